"""The flag threshold of a trained version, chosen on its pooled validation windows.

`fraud train` scores `model_threshold_windows` weeks, each by a model that had not seen it
(`engine.model`), and cuts the pooled scores here. `threshold_rule` says how:

* `pooled` (rounds 4-7): the lowest score down to which the pooled precision keeps
  `target_precision` (`metrics.threshold_for_precision`). Precision on the validation weeks
  is then the target by construction, whatever their size says about its noise.
* `bound` (default, round 8b): the lowest score down to which the precision's lower
  confidence bound (`threshold_confidence`) keeps the target
  (`metrics.threshold_for_bounded_precision`): Wilson's bound at the effective number of
  flags, the design effect measured between the validation days within each window. The
  margin above the target is the validation data's own noise: wide with few flags, or frauds
  and false alarms bunched in a few days; nearly nothing with many, evenly spread. The
  windows' differences are not counted as noise: the earlier windows are scored by models
  trained on fewer days and are systematically less precise (on the dev seeds the earliest
  was the worst in 9 of 10 runs, and the month scored by the new model beat the pooled
  windows by 0.03-0.08), so a bound across windows (`bound_across_windows` in the
  candidates) or the worst window alone (`worst_window`) bought precision the month already
  had at up to 0.03-0.05 of recall (benchmarks/README.md, round 8b).

The candidates of each rule, with each window's precision at them, are kept with the
choice, so the training report says why the threshold is where it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ledgerguard.fraud.engine.metrics import (
    BoundedThreshold,
    threshold_for_bounded_precision,
    threshold_for_precision,
)
from ledgerguard.settings.fraud import FraudParameters


@dataclass(frozen=True)
class ThresholdChoice:
    threshold: float
    rule: str
    #: One sentence for the training report: the rule, what it reached, and where.
    reason: str
    #: Precision of each validation window at `threshold` (None: nothing flagged there),
    #: the new model's own window first.
    window_precision: list[float | None]
    #: What each rule would give on the same scores (threshold, pooled precision and recall,
    #: precision per window), kept in the card for comparison.
    candidates: dict[str, dict[str, Any]]


def choose_threshold(
    is_fraud: np.ndarray,
    score: np.ndarray,
    window: np.ndarray,
    day: np.ndarray,
    params: FraudParameters,
) -> ThresholdChoice:
    """The threshold `params.threshold_rule` gives on the pooled validation rows.

    `window` numbers each row's validation window (0: the new model's own), `day` its day.
    Never below `store_min_score`: the run does not store, so cannot flag, rows below it.
    """
    target, floor = params.target_precision, params.store_min_score
    confidence = params.threshold_confidence
    bound = threshold_for_bounded_precision(is_fraud, score, day, target, confidence, window)
    across = threshold_for_bounded_precision(is_fraud, score, day, target, confidence)
    per_window = [
        threshold_for_precision(is_fraud[window == w], score[window == w], target)
        for w in np.unique(window)
    ]
    raw = {
        "pooled": threshold_for_precision(is_fraud, score, target),
        "bound": bound.threshold,
        "bound_across_windows": across.threshold,
        "worst_window": max(per_window, default=1.0),
    }
    candidates = {name: max(value, floor) for name, value in raw.items()}
    rule = params.threshold_rule
    threshold = candidates[rule]
    if rule == "pooled":
        reason = f"pooled precision of the validation windows reaches {target:.2f}"
    else:
        reason = _bound_reason(bound, target, confidence)
    if raw[rule] < floor:
        reason += f"; raised to store_min_score {floor}"
    return ThresholdChoice(
        threshold=threshold,
        rule=rule,
        reason=reason,
        window_precision=_window_precision(is_fraud, score, window, threshold),
        candidates={
            name: {
                "threshold": value,
                "precision": _precision(is_fraud, score >= value),
                "recall": round(float((score[is_fraud == 1] >= value).mean()), 4)
                if (is_fraud == 1).any()
                else None,
                "window_precision": _window_precision(is_fraud, score, window, value),
            }
            for name, value in candidates.items()
        },
    )


def _bound_reason(bound: BoundedThreshold, target: float, confidence: float) -> str:
    level = f"{confidence:.0%} lower bound"
    if not bound.reached:
        return (
            f"no cut's {level} of the precision reaches {target:.2f} (too few flags or "
            "frauds): only the highest score is flagged"
        )
    return (
        f"{level} of the precision reaches {target:.2f}: {bound.lower_bound:.3f} "
        f"(precision {bound.precision:.3f} over {bound.flagged:,} flags, "
        f"{bound.effective_flags:,.0f} effective between the days of each window)"
    )


def _precision(is_fraud: np.ndarray, flagged: np.ndarray) -> float | None:
    return round(float(is_fraud[flagged].mean()), 4) if flagged.any() else None


def _window_precision(
    is_fraud: np.ndarray, score: np.ndarray, window: np.ndarray, threshold: float
) -> list[float | None]:
    flagged = score >= threshold
    return [_precision(is_fraud, flagged & (window == w)) for w in np.unique(window)]
