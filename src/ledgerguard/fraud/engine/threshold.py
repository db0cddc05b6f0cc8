"""The flag threshold of a trained version, chosen on its pooled validation windows.

`fraud train` scores `model_threshold_windows` weeks, each by a model that had not seen it
(`engine.fitting`), and cuts the pooled scores here. `threshold_rule` says how:

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
  windows by 0.03-0.08), so a bound across windows or the worst window's own cut (both
  measured, then dropped) bought precision the month already had at up to 0.03-0.05 of
  recall (benchmarks/README.md, round 8b).

Both rules' cuts, with each window's precision at them, are kept with the choice, so the
training report says why the threshold is where it is.

With `model_keeps_rule_flags` (default, round 8c) the model adds to the rules' flags and never
removes one (`scoring.score_frame`): a row the rules alone flag stays flagged whatever the
threshold. The threshold is then cut for the target on the rows the rules do not flag: on
what the model adds (round 9, candidates `<rule>+added`). The month's precision is then that
of two parts each held to its own standard: the rules' flags, which hold their precision from
one data set to the next (0.955-0.99 on every generator variant measured), and the model's
additions, bounded on their own. Cutting on the score over every row instead (`<rule>+kept`,
round 8c's default, still kept among the candidates for comparison) lets the rules' precise
flags carry a looser cut for the model's: about 0.02 more recall on the generator (up to
0.057), but the flags it adds were 0.40 precise (unseen seeds 709-710), and the month fell
below 0.90 precision on 7 of the 35 unseen runs where both cuts were measured (generator
variants and default data alike, each at a low threshold), against none with the cut on the
additions. At the target the model then adds few flags: its gain is the ranking (average
precision) and the reasons (benchmarks/README.md, round 9). Cutting for the target on
everything flagged (the union) was measured and dropped in round 8c: the rules' own precision
on the validation weeks sits near the target (0.83-0.99 per week on the dev seeds), so the
union often found no cut.
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


#: Suffixes of the candidates that flag the rules' own rows too (`model_keeps_rule_flags`),
#: their figures those of everything flagged: cut on the score over every row (`+kept`) or
#: for the target on the rows the rules do not flag (`+added`, the one chosen).
KEPT = "+kept"
ADDED = "+added"


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
    `kept`, the rows the rules alone flag, kept flagged below the threshold (None: the score
    is all that flags; the caller decides, by `FraudParameters.keeps_rule_flags`). Never
    below `store_min_score`: the run does not store, so cannot flag, rows below it.
    """
    target, floor = params.target_precision, params.store_min_score
    rule = params.threshold_rule
    # what is flagged at a cut: the score above it, and the rules' own flags at every cut
    shown, suffix = score, ""
    # each form's suffix and the rows its cut is chosen on
    forms: dict[str, np.ndarray | slice] = {"": slice(None)}
    if kept is not None:
        shown, suffix = np.where(kept, 1.0, score), ADDED  # the form chosen
        forms = {KEPT: slice(None), ADDED: ~kept}
    cuts = {
        form: _cuts(is_fraud[rows], score[rows], window[rows], day[rows], params)
        for form, rows in forms.items()
    }
    candidates = {
        name + form: _figures(is_fraud, shown, window, max(value, floor))
        for form, (raw, _) in cuts.items()
        for name, value in raw.items()
    }
    raw, bound = cuts[suffix]
    if rule == "pooled":
        reason = f"pooled precision of the validation windows reaches {target:.2f}"
    else:
        reason = _bound_reason(bound, target, params.threshold_confidence)
    if suffix == ADDED:
        reason += (
            " on the rows the rules alone do not flag (what the model adds); the rules' own "
            "flags are kept below it"
        )
    if raw[rule] < floor:
        reason += f"; raised to store_min_score {floor}"
    chosen = candidates[rule + suffix]
    return ThresholdChoice(
        threshold=chosen["threshold"],
        rule=rule + suffix,
        reason=reason,
        window_precision=chosen["window_precision"],
        candidates=candidates,
    )


def _cuts(
    is_fraud: np.ndarray,
    score: np.ndarray,
    window: np.ndarray,
    day: np.ndarray,
    params: FraudParameters,
) -> tuple[dict[str, float], BoundedThreshold]:
    """Each rule's raw cut of these rows' scores (before `store_min_score`), and the bound
    behind `bound`."""
    target = params.target_precision
    bound = threshold_for_bounded_precision(
        is_fraud, score, day, target, params.threshold_confidence, window
    )
    pooled = threshold_for_precision(is_fraud, score, target)
    return {"pooled": pooled, "bound": bound.threshold}, bound


def _figures(
    is_fraud: np.ndarray, shown: np.ndarray, window: np.ndarray, cut: float
) -> dict[str, Any]:
    """A cut's validation figures: what `shown` (the score, the rules' own flags at 1 when
    they are kept) flags there, pooled and per window."""
    frauds = is_fraud == 1
    return {
        "threshold": cut,
        "precision": _precision(is_fraud, shown >= cut),
        "recall": round(float((shown[frauds] >= cut).mean()), 4) if frauds.any() else None,
        "window_precision": _window_precision(is_fraud, shown, window, cut),
    }


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
