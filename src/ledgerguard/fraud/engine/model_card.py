"""What a trained model version records and reports, and whether it replaces the promoted one.

`model_card` is what a stored version says of itself (`card.json`, next to the model in the
store, `fraud.model_store`): the features and threshold `FraudModel.from_store` reads back, and
for the people who decide to trust it, what it was trained and validated on, how it did, what
it was built with and what the promotion gate decided. `train_report` is what `fraud train` and
the weekly `04_model_training` DAG print, made from the card so the two never disagree.
`promotion_gate` is the rule that decides. Apart from `engine.fitting` (which fits, chooses the
threshold and judges) because this is the version's record, read by people and by the store,
not the learning.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ledgerguard.fraud.engine.combiner import ScoreCombiner
from ledgerguard.fraud.engine.windows import SECONDS_PER_DAY, US_PER_SECOND
from ledgerguard.fraud.model_store import model_path
from ledgerguard.settings.fraud import FraudParameters


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
    average_precision_combined: float
    average_precision_current: float | None
    current_version: str | None
    threshold: float
    validation_precision: float
    validation_recall: float
    #: Validation windows of `test_days` the threshold was chosen on (pooled).
    threshold_windows: int
    #: `FraudParameters.threshold_rule`, why the threshold is where it is, and the
    #: precision of each validation window there (the new model's own first).
    threshold_rule: str
    threshold_reason: str
    window_precision: list[float | None]
    #: The threshold each rule would have given on the same validation scores.
    threshold_candidates: dict[str, dict[str, Any]]
    #: How the version's score is made: "learned" (a combination fitted on those windows,
    #: in the card), "noisy_or" or "model" (`FraudParameters.model_score`).
    score_combination: str
    features: list[str]
    version: str
    promoted: bool
    promotion_reason: str
    model_path: str
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def library_versions() -> dict[str, str]:
    import sklearn

    return {"scikit-learn": sklearn.__version__, "numpy": np.__version__, "pandas": pd.__version__}


def _day_iso(day: int) -> str:
    """A day number (days since the epoch) as the ISO text of its UTC midnight."""
    return datetime.fromtimestamp(day * SECONDS_PER_DAY, UTC).isoformat()


def model_card(
    *,
    names: list[str],
    threshold: float,
    combiner: ScoreCombiner | None,
    params: FraudParameters,
    first_day: int,
    last_day: int,
    test_since_us: int,
    target: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    metrics: dict[str, Any],
    reason: str,
) -> dict[str, Any]:
    """What a stored version says of itself (`card.json`, written by `model_store.save`).

    `FraudModel.from_store` reads its features, threshold and combiner back; the rest says what
    the version was trained and validated on (days as UTC midnights, rows, frauds), how it did
    (`metrics`), what it was built with (parameters, library versions), what the gate decided
    and when. The score combination is the one asked for, but `noisy_or` where "learned" had a
    single window to learn on.
    """
    day_us = SECONDS_PER_DAY * US_PER_SECOND
    since = datetime.fromtimestamp(test_since_us / US_PER_SECOND, UTC)
    until = datetime.fromtimestamp((last_day + 1) * day_us / US_PER_SECOND, UTC)
    combination = params.model_score
    if combiner is None and combination == "learned":
        combination = "noisy_or"  # one window: nothing out of time to learn a combination on
    return {
        "features": names,
        "threshold": threshold,
        "score_combination": combination,
        "combiner": combiner.to_card() if combiner is not None else None,
        "target_precision": params.target_precision,
        "training_interval": [_day_iso(first_day), since.isoformat()],
        "validation_interval": [since.isoformat(), until.isoformat()],
        "rows": {"train": int(train.sum()), "validation": int(test.sum())},
        "frauds": {"train": int(target[train].sum()), "validation": int(target[test].sum())},
        "metrics": metrics,
        "params": params.model_dump(mode="json"),
        "libraries": library_versions(),
        "promotion": reason,
        "trained_at": datetime.now(UTC).isoformat(),
    }


def train_report(
    card: dict[str, Any],
    *,
    version: str,
    current_version: str | None,
    promoted: bool,
    store: Path,
    began: float,
) -> TrainReport:
    """What `fraud train` and the weekly DAG report: the figures of the version's card (the
    same values, so the report never says other than the store), the version it was stored
    as, the promoted one it was judged against, the gate's decision and the time it took
    since `began` (`time.monotonic`)."""
    rows, frauds, metrics = card["rows"], card["frauds"], card["metrics"]
    return TrainReport(
        rows=rows["train"] + rows["validation"],
        frauds=frauds["train"] + frauds["validation"],
        train_rows=rows["train"],
        test_rows=rows["validation"],
        test_frauds=frauds["validation"],
        test_since=card["validation_interval"][0],
        average_precision_model=metrics["average_precision_model"],
        average_precision_rules=metrics["average_precision_rules"],
        average_precision_combined=metrics["average_precision_combined"],
        average_precision_current=metrics["average_precision_current"],
        current_version=current_version,
        threshold=card["threshold"],
        validation_precision=metrics["validation_precision"],
        validation_recall=metrics["validation_recall"],
        threshold_windows=metrics["threshold_windows"],
        threshold_rule=metrics["threshold_rule"],
        threshold_reason=metrics["threshold_reason"],
        window_precision=metrics["window_precision"],
        threshold_candidates=metrics["threshold_candidates"],
        score_combination=card["score_combination"],
        features=card["features"],
        version=version,
        promoted=promoted,
        promotion_reason=card["promotion"],
        model_path=str(model_path(store, version)),
        seconds=round(time.monotonic() - began, 3),
    )


def promotion_gate(
    ap_new: float,
    ap_rules: float,
    ap_current: float | None,
    current_version: str | None,
    *,
    promote: bool = True,
) -> tuple[bool, str]:
    """(promote the new version?, why) from the average precisions on its held-out days.

    The gate of `fraud train` and the weekly `04_model_training` DAG: a new version replaces
    the promoted one only if it is strictly better than the rules alone (a model that adds
    nothing would only add a dependency and a reason analysts must read) and at least as good
    as the promoted version on the same days (`ap_current`, None without one, or when it
    cannot score them: the new one then replaces it). A tie with the promoted version promotes
    the new one: it was trained on the newer labels.
    """
    if not promote:
        return False, "not promoted: --no-promote"
    if not ap_new > ap_rules:
        return (
            False,
            f"not promoted: AP {ap_new:.4f} does not beat the rules alone ({ap_rules:.4f})",
        )
    if ap_current is not None and not ap_new >= ap_current:  # (a NaN never passes)
        return False, (
            f"not promoted: AP {ap_new:.4f} is below the promoted version "
            f"{current_version} ({ap_current:.4f})"
        )
    return True, f"promoted: AP {ap_new:.4f} against rules {ap_rules:.4f}" + (
        f" and version {current_version} {ap_current:.4f}" if ap_current is not None else ""
    )
