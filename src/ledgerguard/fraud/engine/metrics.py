"""Ranking quality of a score, shared by the evaluation table and model training."""

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
