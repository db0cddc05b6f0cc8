"""How well the engine finds labelled fraud: one table, per pattern and overall.

`evaluate(frame)` takes one row per analysed transaction with `is_fraud`, `pattern` (empty for
legitimate rows), `score` and `flagged`, and returns one row per pattern plus `overall`:

* `positives`: fraudulent transactions of the pattern; `detected`: those flagged;
* `recall` = detected / positives;
* `precision` = detected / (detected + flagged legitimate transactions): the pattern's
  transactions against all legitimate traffic, since a false alarm has no pattern;
* `average_precision`: area under the precision-recall curve of `score` on the same subset
  (step-wise, as scikit-learn's `average_precision_score`), i.e. how well the score ranks the
  pattern's frauds above legitimate traffic regardless of the threshold.

Two ways to get that frame: `score_in_memory` runs the engine on a data set held in memory
(synthetic or a labelled file; no database), `scores_from_database` joins a labels file with
what a pipeline run wrote to `fraud_scores`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from ledgerguard.db.engines import analytics_engine
from ledgerguard.fraud.engine.frame import engine_frame
from ledgerguard.fraud.engine.metrics import average_precision
from ledgerguard.fraud.engine.rules import RULE_IDS
from ledgerguard.fraud.engine.scoring import MODEL_SIGNAL, score_frame
from ledgerguard.fraud.engine.terminal_history import history_in_memory, labelled_days_of
from ledgerguard.fraud.errors import FraudAnalysisError
from ledgerguard.fraud.imports.check import TRANSACTION_COLUMNS
from ledgerguard.fraud.imports.importer import LABEL_COLUMNS
from ledgerguard.money import FxRates
from ledgerguard.settings import Settings
from ledgerguard.settings.fraud import FraudParameters
from ledgerguard.utc import to_us, utc_naive

if TYPE_CHECKING:
    from ledgerguard.fraud.engine.model import FraudModel

OVERALL = "overall"


def evaluate(frame: pd.DataFrame) -> pd.DataFrame:
    """The evaluation table (see module docstring); `frame` needs is_fraud, pattern, score, flagged."""
    is_fraud = frame["is_fraud"].astype(bool).to_numpy()
    flagged = frame["flagged"].astype(bool).to_numpy()
    score = frame["score"].astype(float).to_numpy()
    pattern = frame["pattern"].fillna("").astype(str).to_numpy()
    false_alarms = int((flagged & ~is_fraud).sum())
    names = sorted(set(pattern[is_fraud]) - {""})
    rows = []
    for name in [*names, OVERALL]:
        mine = is_fraud if name == OVERALL else is_fraud & (pattern == name)
        subset = mine | ~is_fraud
        detected = int((flagged & mine).sum())
        positives = int(mine.sum())
        rows.append(
            {
                "pattern": name,
                "positives": positives,
                "detected": detected,
                "precision": detected / (detected + false_alarms)
                if detected + false_alarms
                else float("nan"),
                "recall": detected / positives if positives else float("nan"),
                "average_precision": average_precision(mine[subset], score[subset]),
            }
        )
    table = pd.DataFrame(rows)
    table.attrs["false_alarms"] = false_alarms
    table.attrs["legitimate"] = int((~is_fraud).sum())
    return table


def configuration_metrics(
    analysed_ids: np.ndarray, stored: pd.DataFrame, fraud_ids: np.ndarray
) -> dict[str, Any]:
    """Overall and per-rule figures of one configuration on one interval.

    `analysed_ids`: every transaction of the interval; `stored`: the verdict rows the
    configuration would store (`transaction_id, score, flagged, rule_ids`); `fraud_ids`: the
    confirmed frauds. Per rule, `precision` is the share of fraud among the rows it fired on
    and `recall` the share of all frauds it fired on.
    """
    is_fraud = np.isin(analysed_ids, fraud_ids)
    position = pd.Series(np.arange(len(analysed_ids)), index=analysed_ids)
    rows = position.reindex(stored["transaction_id"].to_numpy()).to_numpy()
    keep = ~np.isnan(rows)
    rows = rows[keep].astype(np.int64)
    score = np.zeros(len(analysed_ids))
    flagged = np.zeros(len(analysed_ids), dtype=bool)
    score[rows] = stored["score"].to_numpy(dtype=float)[keep]
    flagged[rows] = stored["flagged"].to_numpy(dtype=bool)[keep]
    frauds = int(is_fraud.sum())
    hits = int((flagged & is_fraud).sum())
    per_rule = {}
    rule_ids = stored["rule_ids"].to_numpy()[keep]
    for rule in (*RULE_IDS, MODEL_SIGNAL):
        fired_rows = rows[np.array([rule in ids.split(",") for ids in rule_ids], dtype=bool)]
        fired, true = len(fired_rows), int(is_fraud[fired_rows].sum())
        if rule == MODEL_SIGNAL and fired == 0:
            continue
        per_rule[rule] = {
            "fired": fired,
            "frauds": true,
            "precision": _ratio(true, fired),
            "recall": _ratio(true, frauds),
        }
    return {
        "analysed": len(analysed_ids),
        "frauds": frauds,
        "flagged": int(flagged.sum()),
        "precision": _ratio(hits, int(flagged.sum())),
        "recall": _ratio(hits, frauds),
        "average_precision": round(average_precision(is_fraud, score), 4) if frauds else None,
        "rules": per_rule,
    }


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def read_labelled_files(transactions: Path, labels: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A transactions file (the import format) and its labels file (`external_id,is_fraud`,
    optionally `pattern`, `labelled_at`), as `score_in_memory` and `fraud train` take them.

    A file without a column the engine reads is refused by name (`FraudAnalysisError`) before
    any scoring, as `ledgerguard import` refuses it, instead of failing on the first use of
    the column with only its name.
    """
    frame = pd.read_csv(transactions, dtype=str, keep_default_na=False)
    label_frame = pd.read_csv(labels, dtype={"external_id": str}, keep_default_na=False)
    for role, columns, required in (
        ("transactions", frame.columns, TRANSACTION_COLUMNS),
        ("labels", label_frame.columns, LABEL_COLUMNS),
    ):
        missing = [name for name in required if name not in columns]
        if missing:
            raise FraudAnalysisError(
                f"the {role} file's header must name {', '.join(required)} (missing: "
                f"{', '.join(missing)}; got {', '.join(map(str, columns)) or 'nothing'})"
            )
    return frame, label_frame


def score_in_memory(
    transactions: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    start: datetime,
    end: datetime,
    params: FraudParameters | None = None,
    fx: FxRates | None = None,
    model: FraudModel | None = None,
) -> pd.DataFrame:
    """Run the engine on a labelled data set in memory; one row per transaction in [start, end).

    Labels feed `terminal_risk` exactly as `fraud_labels` does in the pipeline (only the labels
    of days up to each row's label horizon count, and those confirmed early by their
    `labelled_at` if the labels have one), and are joined to the verdicts for
    `evaluate`. A transaction the pipeline would not store gets score 0, as in `fraud_scores`.
    """
    params = params or FraudParameters()
    frame = engine_frame(transactions, fx or FxRates())
    labelled = frame[["transaction_id", "external_id"]].merge(labels, on="external_id", how="left")
    fraud = labelled["is_fraud"].fillna(0).astype(int) == 1
    fraud_ids = labelled.loc[fraud, "transaction_id"].to_numpy()
    # when each label came (`labelled_at`, if the labels have it): frauds confirmed early
    known = (
        labelled_days_of(labelled.loc[fraud, "labelled_at"]) if "labelled_at" in labelled else None
    )
    history = history_in_memory(frame[frame["ts_us"] < to_us(end)], fraud_ids, params, known)
    scores = score_frame(
        frame.drop(columns="external_id"), history, params, start=start, end=end, model=model
    ).rows
    ts = frame["ts_us"].to_numpy()
    inside = frame.loc[(ts >= to_us(start)) & (ts < to_us(end)), ["transaction_id"]]
    result = inside.merge(scores, on="transaction_id", how="left").merge(
        labelled, on="transaction_id", how="left"
    )
    result["score"] = result["score"].fillna(0.0)
    result["flagged"] = result["flagged"].fillna(False).astype(bool)
    result["rule_ids"] = result["rule_ids"].astype(object).fillna("")  # all NaN: none stored
    result["is_fraud"] = result["is_fraud"].fillna(0).astype(int)
    result["pattern"] = result["pattern"].fillna("") if "pattern" in result else ""
    return result


def scores_from_database(
    settings: Settings, *, labels_path: Path, start: datetime, end: datetime
) -> pd.DataFrame:
    """Labels file joined with the `fraud_scores` of transactions in [start, end) (replica).

    Transactions without a stored score scored below `store_min_score`: they count as score 0,
    not flagged.
    """
    labels = pd.read_csv(labels_path, dtype={"external_id": str}, keep_default_na=False)
    query = sa.text(
        "SELECT t.external_id, COALESCE(s.score, 0) AS score, COALESCE(s.flagged, 0) AS flagged "
        "FROM transactions t LEFT JOIN fraud_scores s ON s.transaction_id = t.id "
        "WHERE t.occurred_at >= :start AND t.occurred_at < :end AND t.external_id IS NOT NULL"
    )
    engine = analytics_engine(settings)
    try:
        with engine.connect() as conn:
            scores = pd.DataFrame(
                conn.execute(query, {"start": utc_naive(start), "end": utc_naive(end)}).all(),
                columns=["external_id", "score", "flagged"],
            )
    finally:
        engine.dispose()
    frame = scores.merge(labels, on="external_id", how="inner")
    frame["score"] = frame["score"].astype(float)
    if "pattern" not in frame:
        frame["pattern"] = ""
    return frame
