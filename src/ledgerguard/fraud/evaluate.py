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

import numpy as np
import pandas as pd
import sqlalchemy as sa

from ledgerguard.fraud.engine.features import TerminalHistory, terminal_days
from ledgerguard.fraud.engine.fx import parse_units, usd_units
from ledgerguard.fraud.engine.scoring import score_frame, to_us
from ledgerguard.fraud.reader import analytics_engine, utc_naive
from ledgerguard.money import FxRates
from ledgerguard.settings import Settings
from ledgerguard.settings.fraud import FraudParameters

OVERALL = "overall"


def average_precision(is_fraud: np.ndarray, score: np.ndarray) -> float:
    """Step-wise average precision; tied scores enter the curve together. NaN without positives."""
    positives = int(is_fraud.sum())
    if positives == 0:
        return float("nan")
    order = np.argsort(-score, kind="stable")
    ranked_score, ranked_fraud = score[order], is_fraud[order].astype(np.int64)
    # Last position of each distinct score: one point of the curve per threshold.
    cut = np.flatnonzero(np.diff(ranked_score) != 0)
    ends = np.append(cut, len(ranked_score) - 1)
    true_pos = np.cumsum(ranked_fraud)[ends]
    precision = true_pos / (ends + 1)
    recall = true_pos / positives
    return float(np.sum(np.diff(np.concatenate(([0.0], recall))) * precision))


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


def engine_frame(transactions: pd.DataFrame, fx: FxRates) -> pd.DataFrame:
    """Transactions in the import format (strings or parsed) as the engine's transaction frame.

    Ids are assigned 1..n in the given order; the frame keeps `external_id` for joining labels.
    """
    occurred = pd.to_datetime(transactions["occurred_at"], utc=True, format="ISO8601")
    ts_us = occurred.astype("datetime64[us, UTC]").astype("int64").to_numpy()
    amount_units = parse_units(transactions["amount"].astype(str))
    currency = transactions["currency"].astype(str).to_numpy()
    terminal = pd.to_numeric(transactions["terminal_id"], errors="coerce").fillna(-1)
    return pd.DataFrame(
        {
            "transaction_id": np.arange(1, len(transactions) + 1, dtype=np.int64),
            "user_id": transactions["user_id"].astype("int64").to_numpy(),
            "terminal_id": terminal.astype("int64").to_numpy(),
            "ts_us": ts_us,
            "amount_units": amount_units,
            "currency": currency,
            "usd_units": usd_units(amount_units, currency, ts_us, fx),
            "external_id": transactions["external_id"].astype(str).to_numpy(),
        }
    )


def score_in_memory(
    transactions: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    start: datetime,
    end: datetime,
    params: FraudParameters | None = None,
    fx: FxRates | None = None,
) -> pd.DataFrame:
    """Run the engine on a labelled data set in memory; one row per transaction in [start, end).

    Labels feed `terminal_risk` exactly as `fraud_labels` does in the pipeline (only labels of
    transactions older than the label delay count), and are joined to the verdicts for
    `evaluate`.
    """
    params = params or FraudParameters()
    frame = engine_frame(transactions, fx or FxRates())
    labelled = frame[["transaction_id", "external_id"]].merge(labels, on="external_id", how="left")
    fraud_ids = labelled.loc[labelled["is_fraud"].fillna(0).astype(int) == 1, "transaction_id"]
    history = TerminalHistory(
        terminal_days(frame[frame["ts_us"] < to_us(end)], fraud_ids.to_numpy())
    )
    scores = score_frame(
        frame.drop(columns="external_id"),
        history,
        params,
        start=start,
        end=end,
        store_all=True,
    ).rows
    result = scores.merge(labelled, on="transaction_id", how="left")
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
