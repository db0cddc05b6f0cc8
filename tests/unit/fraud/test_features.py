"""Vectorised windows against brute force on random data."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from ledgerguard.fraud.engine.features import (
    SECONDS_PER_DAY,
    US_PER_SECOND,
    TerminalHistory,
    TimeAxis,
    covering_groups,
    terminal_features,
    usd_threshold_units,
    window_sums,
)
from ledgerguard.settings.fraud import FraudParameters

rows = st.lists(
    st.tuples(st.integers(1, 4), st.integers(0, 5_000), st.integers(1, 1_000)),
    min_size=1,
    max_size=60,
)


@settings(max_examples=80, deadline=None)
@given(data=rows, window=st.integers(1, 2_000))
def test_trailing_windows_match_brute_force(data, window):
    data = sorted(data)
    user = np.array([d[0] for d in data])
    seconds = np.array([d[1] for d in data])
    value = np.array([d[2] for d in data])
    axis = TimeAxis(user, seconds * 1_000_000, max_window_s=window)
    lo, hi = axis.since(window, include_current=True)
    sums = window_sums(value, lo, hi)
    lo_prev, hi_prev = axis.since(window, include_current=False)
    medians = axis.rolling_median(value.astype(float), window)
    for i in range(len(data)):
        same = [j for j in range(len(data)) if user[j] == user[i]]
        inclusive = [j for j in same if seconds[i] - window < seconds[j] and j <= i]
        assert sums[i] == value[inclusive].sum()
        earlier = [j for j in same if seconds[i] - window <= seconds[j] < seconds[i]]
        assert hi_prev[i] - lo_prev[i] == len(earlier)
        if earlier:
            assert medians[i] == np.median(value[earlier])
        else:
            assert np.isnan(medians[i])


def test_covering_groups_mark_every_row_of_a_burst():
    key = np.array([0, 10, 20, 30, 1_000, 1_010])
    lo = np.searchsorted(key, key - 60, side="right")
    count = np.arange(1, len(key) + 1) - lo
    groups = covering_groups(key, lo, count >= 3, 60)
    assert groups.member.tolist() == [True, True, True, True, False, False]
    assert groups.size.tolist() == [4]


def test_usd_threshold_units_floor_keeps_strict_comparisons_exact():
    assert usd_threshold_units("10000.00") == 100_000_000
    assert (
        usd_threshold_units("10000.00005") == 100_000_000
    )  # x > 10000.00005 <=> units > 100000000


def test_terminal_recency_rises_with_known_fraud_and_falls_once_the_labels_show_it_ended():
    # terminal 7: 3 payments a day on days 100..129, all fraud on days 110..114
    days = np.arange(100, 130)
    history = TerminalHistory(
        pd.DataFrame(
            {
                "terminal_id": 7,
                "day": days,
                "n_tx": 3,
                "n_fraud": np.where((days >= 110) & (days <= 114), 3, 0),
            }
        )
    )
    scored_days = np.array([112, 118, 121, 124, 140])  # label horizon: day - 8
    frame = pd.DataFrame(
        {
            "terminal_id": np.full(5, 7),
            "ts_us": scored_days * SECONDS_PER_DAY * US_PER_SECOND,
        }
    )
    out = terminal_features(frame, history, FraudParameters(terminal_history_days=28))
    # 112: horizon 104, nothing known yet; 118: horizon 110, the first fraud day is known;
    # 121: horizon 113, four fraud days in a row; 124: horizon 116, two clean days since;
    # 140: horizon 132, no payment for days, the fraud long over
    assert out["terminal_fraud_run_days"].tolist() == [0, 1, 4, 0, 0]
    assert out["terminal_days_since_fraud"].tolist() == [28, 0, 0, 2, 18]
    risk = out["terminal_recent_risk"]
    assert risk[0] == 0 and 0 < risk[1] < 0.5 < risk[2]  # one fraud day is not yet a pattern
    assert risk[3] < risk[2] and risk[4] < 0.05
