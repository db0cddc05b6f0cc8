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

With `model_keeps_rule_flags` (default, round 8c) the model adds to the rules' flags and never
removes one (`scoring.score_frame`): a row the rules alone flag stays flagged whatever the
threshold. `rule_flags_threshold` says how the threshold is then cut: `score` (default) as
before, on the combined score, the rules' flags below it simply added; `union`, for the target
on everything flagged (the rules' rows count as flagged at every cut: their score is taken as
1); `added`, for the target on the rows the rules do not flag. On the dev seeds the rules' own
precision on the validation weeks sat near the target (0.83-0.99 per week), so `union` often
found no cut and `added` cut high: both lost recall (benchmarks/README.md, round 8c). Every
form is kept among the candidates (`<rule>+kept`, `+rules`, `+added`), so one training
measures all of them.
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


#: Suffixes of the candidates that flag the rules' own rows too (`model_keeps_rule_flags`):
#: cut on the score alone as without them (`+kept`), on the union (the target on everything
#: flagged, `+rules`), or on the rows the rules do not flag (the target on what the model
#: adds, `+added`). Their figures are those of everything they flag.
KEPT = "+kept"
UNION = "+rules"
ADDED = "+added"
SUFFIXES = {"score": KEPT, "union": UNION, "added": ADDED}


def choose_threshold(
    is_fraud: np.ndarray,
    score: np.ndarray,
    window: np.ndarray,
    day: np.ndarray,
    params: FraudParameters,
    kept: np.ndarray | None = None,
) -> ThresholdChoice:
    """The threshold `params.threshold_rule` gives on the pooled validation rows.

    `window` numbers each row's validation window (0: the new model's own), `day` its day;
    `kept`, the rows the rules alone flag (None: the score is all that flags, as with
    `model_score=model`). Never below `store_min_score`: the run does not store, so cannot
    flag, rows below it.
    """
    target, floor = params.target_precision, params.store_min_score
    rule = params.threshold_rule
    candidates, bounds = _cuts(is_fraud, score, window, day, params)
    union = kept is not None and params.model_keeps_rule_flags
    if kept is not None:
        # a row the rules flag is flagged at every cut: as if it scored 1
        shown = np.where(kept, 1.0, score)
        for suffix, cut_on, on in (
            (KEPT, score, None),
            (UNION, shown, None),
            (ADDED, score, ~kept),
        ):
            more, more_bounds = _cuts(is_fraud, cut_on, window, day, params, on=on, shown=shown)
            candidates |= {name + suffix: value for name, value in more.items()}
            bounds |= {name + suffix: value for name, value in more_bounds.items()}
    suffix = SUFFIXES[params.rule_flags_threshold]
    name = rule + suffix if union else rule
    threshold = candidates[name]["threshold"]
    if rule == "pooled":
        reason = f"pooled precision of the validation windows reaches {target:.2f}"
    else:
        reason = _bound_reason(bounds[name], target, params.threshold_confidence)
    if union:
        reason += {
            KEPT: " on the score; the rules' own flags are kept below it",
            UNION: " with the rules' own flags counted as flagged at every cut",
            ADDED: " on the rows the rules alone do not flag (what the model adds)",
        }[suffix]
    if candidates[name]["raw"] < floor:
        reason += f"; raised to store_min_score {floor}"
    for candidate in candidates.values():
        del candidate["raw"]
    return ThresholdChoice(
        threshold=threshold,
        rule=name,
        reason=reason,
        window_precision=candidates[name]["window_precision"],
        candidates=candidates,
    )


def _cuts(
    is_fraud: np.ndarray,
    score: np.ndarray,
    window: np.ndarray,
    day: np.ndarray,
    params: FraudParameters,
    on: np.ndarray | None = None,
    shown: np.ndarray | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, BoundedThreshold]]:
    """Every rule's cut of `score` with its validation figures, and the bound behind `bound`.

    The cut is chosen on the rows `on` (None: all); the figures are of every row, by `shown`
    (the score with the rules' own flags at 1) when given.
    """
    target, floor = params.target_precision, params.store_min_score
    confidence = params.threshold_confidence
    cut_fraud, cut_score, cut_window, cut_day = (
        (is_fraud, score, window, day)
        if on is None
        else (is_fraud[on], score[on], window[on], day[on])
    )
    bound = threshold_for_bounded_precision(
        cut_fraud, cut_score, cut_day, target, confidence, cut_window
    )
    across = threshold_for_bounded_precision(cut_fraud, cut_score, cut_day, target, confidence)
    per_window = [
        threshold_for_precision(cut_fraud[cut_window == w], cut_score[cut_window == w], target)
        for w in np.unique(cut_window)
    ]
    raw = {
        "pooled": threshold_for_precision(cut_fraud, cut_score, target),
        "bound": bound.threshold,
        "bound_across_windows": across.threshold,
        "worst_window": max(per_window, default=1.0),
    }
    candidates = {}
    score = score if shown is None else shown
    for name, value in raw.items():
        cut = max(value, floor)
        candidates[name] = {
            "threshold": cut,
            "precision": _precision(is_fraud, score >= cut),
            "recall": round(float((score[is_fraud == 1] >= cut).mean()), 4)
            if (is_fraud == 1).any()
            else None,
            "window_precision": _window_precision(is_fraud, score, window, cut),
            "raw": value,
        }
    return candidates, {"bound": bound}


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
