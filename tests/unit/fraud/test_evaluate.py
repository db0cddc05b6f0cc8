"""Average precision and the evaluation table on tiny known cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ledgerguard.fraud.engine.metrics import average_precision, threshold_for_precision
from ledgerguard.fraud.evaluate import evaluate


def test_average_precision_known_values():
    assert (
        average_precision(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.1])) == (1 + 2 / 3) / 2
    )
    assert average_precision(np.array([1, 1]), np.array([0.5, 0.5])) == 1.0
    # ties between a fraud and a legitimate row enter the curve together
    assert average_precision(np.array([1, 0]), np.array([0.5, 0.5])) == 0.5
    assert math.isnan(average_precision(np.array([0, 0]), np.array([0.1, 0.2])))


def test_precision_per_pattern_is_against_all_false_alarms():
    frame = pd.DataFrame(
        {
            "is_fraud": [1, 1, 1, 0, 0],
            "pattern": ["a", "a", "b", "", ""],
            "score": [0.9, 0.2, 0.8, 0.7, 0.0],
            "flagged": [True, False, True, True, False],
        }
    )
    table = evaluate(frame).set_index("pattern")
    assert table.loc["a", "recall"] == 0.5 and table.loc["a", "precision"] == 0.5
    assert table.loc["b", "recall"] == 1.0
    assert table.loc["overall", "detected"] == 2 and table.loc["overall", "precision"] == 2 / 3


def test_the_threshold_keeps_the_target_precision_from_the_top_down():
    score = np.array([0.99, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3])
    fraud = np.array([1, 1, 1, 0, 1, 1, 1, 0])
    # cuts: 1/1, 2/2, 3/3, 3/4 (0.75 < 0.8: stop here), 4/5, 5/6, 6/7 (0.857, a lucky dip)
    assert threshold_for_precision(fraud, score, 0.8) == 0.8
    assert threshold_for_precision(fraud, score, 0.7) == 0.3  # every cut keeps >= 0.7
    assert threshold_for_precision(np.array([0, 1]), np.array([0.9, 0.1]), 0.9) == 0.9
    assert threshold_for_precision(np.array([]), np.array([]), 0.9) == 1.0
