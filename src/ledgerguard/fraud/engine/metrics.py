"""Ranking quality of a score and the threshold it needs, shared by the evaluation and training."""

from __future__ import annotations

import numpy as np


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
