"""A trained fraud model on the engine's window features: `ledgerguard fraud train`.

Once labels exist, a gradient-boosted tree model (scikit-learn's
`HistGradientBoostingClassifier`, which takes the features' NaNs as they are) learns from the
same customer / terminal window features the rules read (`features.build_features`, the Fraud
Detection Handbook's names). It is trained on every day but the last `test_days` and judged on
those (a time split, as fraud models are used: on the future), side by side with the rule
score on the same rows, by average precision.

What the model sees follows the pipeline's rules: terminal features count only labels older
than `label_delay_days`, so nothing from the future leaks into a row's features. The model file
(joblib) holds the model, its feature names, the parameters the features were built with and the
evaluation. With `LEDGERGUARD_FRAUD__MODEL_PATH` set, the nightly analysis loads it once per run
(`FraudModel`) and `scoring.score_frame` adds its probability as one more signal of the score.

Needs the `ml` extra (`pip install -e .[ml]`: scikit-learn).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ledgerguard.fraud.engine.features import (
    SECONDS_PER_DAY,
    US_PER_SECOND,
    TerminalHistory,
    build_features,
    sort_frame,
    terminal_days,
)
from ledgerguard.fraud.engine.frame import engine_frame
from ledgerguard.fraud.engine.metrics import average_precision
from ledgerguard.fraud.engine.scoring import score_frame
from ledgerguard.fraud.errors import FraudError
from ledgerguard.money import FxRates
from ledgerguard.settings.fraud import FraudParameters


class TrainingError(FraudError, ValueError):
    """The labelled data cannot train a model (no frauds, too few days, no scikit-learn)."""


@dataclass(frozen=True)
class TrainReport:
    rows: int
    frauds: int
    train_rows: int
    test_rows: int
    test_frauds: int
    test_since: str
    average_precision_model: float
    average_precision_rules: float
    features: list[str]
    model_path: str
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The numeric feature columns `build_features` produced, in a stable order."""
    return sorted(c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c]))


def train_model(
    transactions: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    out: Path,
    params: FraudParameters | None = None,
    test_days: int = 7,
    fx: FxRates | None = None,
    seed: int = 0,
) -> TrainReport:
    """Train on all but the last `test_days` days, evaluate on them, save to `out` (joblib).

    `transactions` is in the import format, `labels` has `external_id,is_fraud`. Raises
    `TrainingError` when either part of the split has no fraud, or scikit-learn is missing.
    """
    try:
        import joblib
        from sklearn.ensemble import HistGradientBoostingClassifier
    except ImportError as exc:
        raise TrainingError(
            "training needs scikit-learn: pip install -e '.[ml]' (or make setup)"
        ) from exc
    began = time.monotonic()
    params = params or FraudParameters()
    frame = engine_frame(transactions, fx or FxRates())
    flags = labels[["external_id", "is_fraud"]].astype({"external_id": str})
    labelled = frame[["transaction_id", "external_id"]].merge(flags, on="external_id", how="left")
    is_fraud = pd.to_numeric(labelled["is_fraud"], errors="coerce").fillna(0).astype(int)
    fraud_ids = labelled.loc[is_fraud == 1, "transaction_id"].to_numpy()
    history = TerminalHistory(terminal_days(frame, fraud_ids))

    data = sort_frame(frame.drop(columns="external_id"))
    features = build_features(data, history, params)
    names = feature_columns(features)
    target = np.isin(data["transaction_id"].to_numpy(), fraud_ids).astype(int)
    ts = data["ts_us"].to_numpy()
    day_us = SECONDS_PER_DAY * US_PER_SECOND
    last_day = int(ts.max()) // day_us if len(ts) else 0
    test_since_us = (last_day - test_days + 1) * day_us
    test = ts >= test_since_us
    train = ~test
    for part, mask in (("training", train), ("test", test)):
        if not target[mask].any() or target[mask].all():
            raise TrainingError(
                f"the {part} part ({int(mask.sum()):,} rows) needs frauds and legitimate rows: "
                f"label more data or change --test-days ({test_days})"
            )

    model = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, random_state=seed)
    x = features[names].to_numpy(dtype=float)
    model.fit(x[train], target[train])
    predicted = model.predict_proba(x[test])[:, 1]

    since = datetime.fromtimestamp(test_since_us / US_PER_SECOND, UTC)
    rules = score_frame(
        data,
        history,
        params,
        start=since,
        end=datetime.fromtimestamp((last_day + 1) * day_us / US_PER_SECOND, UTC),
        store_all=True,
    ).rows
    rule_score = (
        pd.Series(rules["score"].to_numpy(), index=rules["transaction_id"])
        .reindex(data["transaction_id"].to_numpy()[test])
        .to_numpy(dtype=float)
    )
    report = TrainReport(
        rows=len(data),
        frauds=int(target.sum()),
        train_rows=int(train.sum()),
        test_rows=int(test.sum()),
        test_frauds=int(target[test].sum()),
        test_since=since.isoformat(),
        average_precision_model=round(average_precision(target[test], predicted), 4),
        average_precision_rules=round(average_precision(target[test], rule_score), 4),
        features=names,
        model_path=str(out),
        seconds=round(time.monotonic() - began, 3),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(
        {
            "model": model,
            "features": names,
            "params": params.model_dump(mode="json"),
            "report": report.to_dict(),
        },
        out,
    )
    return report


def load_model(path: Path) -> dict[str, Any]:
    """A model file written by `train_model` (model, features, params, report)."""
    import joblib

    return dict(joblib.load(path))


class FraudModel:
    """A trained model as the scorer uses it: fraud probability per row of a feature frame."""

    def __init__(self, model: Any, features: list[str]) -> None:
        self._model = model
        self.features = features

    @classmethod
    def load(cls, path: Path) -> FraudModel:
        """Read `path`; `TrainingError` when it is missing, unreadable or scikit-learn is absent."""
        try:
            saved = load_model(path)
            return cls(saved["model"], list(saved["features"]))
        except ImportError as exc:
            raise TrainingError(
                f"{path}: reading a model needs scikit-learn: pip install -e '.[ml]'"
            ) from exc
        except (OSError, KeyError, ValueError, EOFError) as exc:
            raise TrainingError(
                f"{path}: not a model written by `ledgerguard fraud train`: {exc}"
            ) from exc

    def probability(self, data: pd.DataFrame) -> np.ndarray:
        """P(fraud) per row; the frame must hold the features the model was trained on."""
        missing = [name for name in self.features if name not in data]
        if missing:
            raise TrainingError(
                f"the model needs features the current parameters do not build: {missing} "
                "(train it again with today's LEDGERGUARD_FRAUD__* windows)"
            )
        return self._model.predict_proba(data[self.features].to_numpy(dtype=float))[:, 1]
