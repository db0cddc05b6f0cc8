"""Ranking quality of a score and the threshold it needs, shared by the evaluation and training."""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd


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


def threshold_for_precision(is_fraud: np.ndarray, score: np.ndarray, target: float) -> float:
    """The lowest score down to which every cut keeps `target` precision on these rows.

    Walking down from the highest score, the threshold stops before the first cut whose
    precision falls below the target: a lucky cut further down (precision is not monotone)
    would be noise of the validation days, not a setting to trust on the next ones. The
    highest score when even the first cut misses the target, 1.0 without rows.
    """
    if len(score) == 0:
        return 1.0
    order = np.argsort(-score, kind="stable")
    ranked_score, ranked_fraud = score[order], is_fraud[order].astype(np.int64)
    ends = np.append(np.flatnonzero(np.diff(ranked_score) != 0), len(ranked_score) - 1)
    precision = np.cumsum(ranked_fraud)[ends] / (ends + 1)
    below = np.flatnonzero(precision < target)
    if len(below) and below[0] == 0:
        return float(ranked_score[ends[0]])
    last_good = (below[0] - 1) if len(below) else len(ends) - 1
    return float(ranked_score[ends[last_good]])


@dataclass(frozen=True)
class BoundedThreshold:
    """The threshold `threshold_for_bounded_precision` chose, with what it rests on."""

    threshold: float
    #: Rows flagged and their precision on the validation rows at `threshold`.
    flagged: int
    precision: float
    #: The precision's lower confidence bound there, and the effective sample size it used
    #: (flags divided by the design effect of the clusters).
    lower_bound: float
    effective_flags: float
    #: False: no cut's bound reached the target; the threshold is the highest score.
    reached: bool


def precision_lower_bounds(
    is_fraud: np.ndarray,
    score: np.ndarray,
    clusters: np.ndarray,
    confidence: float,
    strata: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per distinct score, walking down: cut score, flags, precision, lower bound, effective flags.

    The bound is Wilson's score interval (one-sided, `confidence`) at the effective number of
    flags: the flags divided by the design effect, the ratio of the precision's variance
    between `clusters` (the cluster-robust variance of a ratio estimator, flags and hits summed
    per cluster) to the binomial one. Frauds come in runs (a compromise lasts weeks, a stolen
    card's payments follow each other), so rows of one cluster are not independent draws and a
    row-level binomial bound would be too narrow; a design effect below 1 is not credited.
    With one cluster so far nothing between clusters is measured and the cut counts as one
    draw. Vectorised: each row's contribution to the per-cluster sums of squares follows from
    its cluster's flags and hits above it (a grouped cumulative count), so the sums at every
    cut are cumulative sums. With `strata` (each cluster inside one: validation windows of
    days) each cluster's residual is taken from its stratum's own precision, so a difference
    between strata (windows scored by models trained on more or fewer days) is not counted as
    noise, only the spread of the clusters within them.
    """
    order = np.argsort(-score, kind="stable")
    ranked_score = score[order]
    hit = is_fraud[order].astype(np.float64)
    group = pd.Series(clusters[order])
    before_flags = group.groupby(group, sort=False).cumcount().to_numpy(dtype=np.float64)
    before_hits = pd.Series(hit).groupby(group, sort=False).cumsum().to_numpy() - hit
    ends = np.append(np.flatnonzero(np.diff(ranked_score) != 0), len(ranked_score) - 1)
    flags = (ends + 1).astype(np.float64)
    hits = np.cumsum(hit)[ends]
    precision = hits / flags
    first = before_flags == 0
    used = np.cumsum(first)[ends]
    ranked_strata = np.zeros(len(order), dtype=np.int64) if strata is None else strata[order]
    residual = np.zeros(len(ends))
    for stratum in np.unique(ranked_strata):
        mine = ranked_strata == stratum

        def at_cuts(values: np.ndarray, mine: np.ndarray = mine) -> np.ndarray:
            return np.cumsum(np.where(mine, values, 0.0))[ends]

        # (F+1)^2 - F^2, (T+y)^2 - T^2 and (T+y)(F+1) - TF, summed over the clusters
        sum_ff = at_cuts(2 * before_flags + 1)
        sum_tt = at_cuts(hit * (2 * before_hits + 1))
        sum_tf = at_cuts(before_hits + hit * before_flags + hit)
        own = at_cuts(hit) / np.maximum(at_cuts(np.ones(len(hit))), 1)
        size = at_cuts(first.astype(np.float64))
        squares = np.maximum(sum_tt - 2 * own * sum_tf + own**2 * sum_ff, 0.0)
        residual += size / np.maximum(size - 1, 1) * squares
    with np.errstate(divide="ignore", invalid="ignore"):
        between = residual / flags**2
        smoothed = (hits + 0.5) / (flags + 1)
        binomial = smoothed * (1 - smoothed) / flags
        effect = np.maximum(between / binomial, 1.0)
    effective = np.where(used > 1, flags / effect, 1.0)
    z = NormalDist().inv_cdf(confidence)
    spread = z * z / effective
    centre = (precision + spread / 2) / (1 + spread)
    half = z * np.sqrt(precision * (1 - precision) / effective + spread / (4 * effective))
    lower = centre - half / (1 + spread)
    return ranked_score[ends], flags, precision, lower, effective


def threshold_for_bounded_precision(
    is_fraud: np.ndarray,
    score: np.ndarray,
    clusters: np.ndarray,
    target: float,
    confidence: float = 0.95,
    strata: np.ndarray | None = None,
) -> BoundedThreshold:
    """The lowest score down to which the precision's lower confidence bound keeps `target`.

    `threshold_for_precision` stops where the validation rows' precision itself first falls
    below the target, so that precision sits at the target by construction however few the
    flags or however bunched in a few days, and the next month can land on either side of it
    (benchmarks/README.md, round 8b). Here a cut must reach the target with `confidence`: the bound
    (`precision_lower_bounds`) widens when the flags are few or come from few clusters, and
    narrows to the precision itself as they grow, so the margin is the validation data's own
    noise, not a constant. Walking down from the highest score, the first cuts (a handful of
    flags) cannot reach the bound; the threshold is the last cut of the first run of cuts that
    do: a lucky cut further down would be noise, as in `threshold_for_precision`. No cut
    reaching it (too few flags or frauds): the highest score, as there, so only what scores
    like a hard rule is flagged.
    """
    if len(score) == 0:
        return BoundedThreshold(1.0, 0, float("nan"), float("nan"), 0.0, False)
    cuts, flags, precision, lower, effective = precision_lower_bounds(
        is_fraud, score, clusters, confidence, strata
    )
    good = lower >= target
    if not good.any():
        return BoundedThreshold(
            float(cuts[0]), int(flags[0]), float(precision[0]), float(lower[0]), 0.0, False
        )
    first = int(np.argmax(good))
    failing = np.flatnonzero(~good[first:])
    last = first + (int(failing[0]) - 1 if len(failing) else len(cuts) - 1 - first)
    return BoundedThreshold(
        float(cuts[last]),
        int(flags[last]),
        float(precision[last]),
        float(lower[last]),
        float(effective[last]),
        True,
    )
