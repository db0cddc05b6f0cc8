"""Vectorised windows against brute force on random data."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ledgerguard.fraud.engine import terminal_features as terminal_module
from ledgerguard.fraud.engine.customer_features import customer_features, customer_terminal_features
from ledgerguard.fraud.engine.terminal_days import (
    PROFILE_COLUMNS,
    add_profiles,
    terminal_days,
    terminal_profile_days,
    with_profile,
)
from ledgerguard.fraud.engine.terminal_features import terminal_features
from ledgerguard.fraud.engine.terminal_history import TerminalHistory, fraud_customer_days
from ledgerguard.fraud.engine.windows import (
    SECONDS_PER_DAY,
    US_PER_SECOND,
    TimeAxis,
    covering_groups,
    order_by,
    sort_frame,
    usd_threshold_units,
    window_sums,
)
from ledgerguard.fraud.errors import FraudAnalysisError
from ledgerguard.settings.fraud import FraudParameters
from tests.unit.fraud.helpers import history_of

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
    history = history_of(
        pd.DataFrame(
            {
                "terminal_id": 7,
                "day": days,
                "n_tx": 3,
                "n_fraud": np.where((days >= 110) & (days <= 114), 3, 0),
            }
        )
    )
    scored_days = np.array([111, 117, 120, 123, 139])  # label horizon: day - 7
    frame = pd.DataFrame(
        {
            "terminal_id": np.full(5, 7),
            "user_id": np.arange(5),
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
    # ... but the run's own share is whole from its first known day: the clean days before
    # the compromise dilute the recent share only (round 9b)
    assert out["terminal_run_fraud_share"].tolist() == [0, 1, 1, 0, 0]
    assert risk[3] < risk[2] and risk[4] < 0.05


def _recency_by_day(terminal, day, history, params):
    """Brute force: one one-day lookup per age, from the label horizon back."""
    n, horizon = len(terminal), params.terminal_history_days
    decay = 0.5 ** (1 / params.terminal_risk_half_life_days)
    wtx, wfraud = np.zeros(n), np.zeros(n)
    since, run = np.full(n, horizon), np.zeros(n, dtype=int)
    running = np.ones(n, dtype=bool)
    for age in range(horizon):
        n_tx, n_fraud = history.window(terminal, day, days=1, lag=params.label_delay_days + age)
        wtx += decay**age * n_tx
        wfraud += decay**age * n_fraud
        since = np.where((n_fraud > 0) & (since == horizon), age, since)
        running &= (n_fraud > 0) | (n_tx == 0)
        run = np.where(running & (n_fraud > 0), age + 1, run)
    recent = np.where(wtx > 0, wfraud / np.where(wtx > 0, wtx, 1), 0.0)
    # a run shown in the window is read on over the compromise history, if that is longer
    shown = run > 0
    run_tx, run_fraud, running = np.zeros(n), np.zeros(n), np.ones(n, dtype=bool)
    for age in range(max(horizon, params.terminal_compromise_history_days)):
        n_tx, n_fraud = history.window(terminal, day, days=1, lag=params.label_delay_days + age)
        running &= (n_fraud > 0) | (n_tx == 0)
        run = np.where(shown & running & (n_fraud > 0), age + 1, run)
        # the run's share: its fraud days' payments, from the newest back to the first clean day
        run_tx += np.where(shown & running, n_tx, 0)
        run_fraud += np.where(shown & running, n_fraud, 0)
    share = np.where(run_tx > 0, run_fraud / np.where(run_tx > 0, run_tx, 1), 0.0)
    return recent, since, run, share


@settings(max_examples=80, deadline=None)
@given(
    days=st.lists(
        st.tuples(st.integers(1, 2), st.integers(0, 20), st.integers(0, 3), st.integers(0, 2)),
        max_size=60,
    ),
    queries=st.lists(st.tuples(st.integers(0, 3), st.integers(-5, 40)), min_size=1, max_size=30),
    horizon=st.integers(1, 30),
    lookback=st.sampled_from([0, 6, 60]),
)
@example(  # fraud, an entry without payments, fraud: one run of three days
    days=[(1, 10, 2, 1), (1, 11, 0, 0), (1, 12, 2, 2), (1, 13, 4, 0)],
    queries=[(1, 20), (1, 21), (1, 22)],
    horizon=10,
    lookback=60,
)
@example(  # a run older than a two-day window, read back over six days
    days=[(1, 9, 3, 0), (1, 10, 2, 1), (1, 11, 1, 1), (1, 12, 2, 2), (1, 13, 4, 3)],
    queries=[(1, 20), (1, 21)],
    horizon=2,
    lookback=6,
)
def test_terminal_recency_is_the_day_by_day_lookup(days, queries, horizon, lookback):
    """The gathered-entries recency equals one lookup per day of the horizon, gaps included,
    and a run shown in the window goes on over `terminal_compromise_history_days` if longer."""
    table = pd.DataFrame(days, columns=["terminal_id", "day", "n_tx", "n_fraud"])
    table = table.groupby(["terminal_id", "day"], as_index=False).sum()
    params = FraudParameters(
        terminal_history_days=horizon, terminal_compromise_history_days=lookback
    )
    terminal = np.array([q[0] for q in queries], dtype=np.int64)
    day = np.array([q[1] for q in queries], dtype=np.int64) + 1_000
    history = history_of(table.assign(day=table["day"] + 1_000))
    frame = pd.DataFrame(
        {
            "terminal_id": terminal,
            "user_id": np.arange(len(terminal)),
            "ts_us": day * SECONDS_PER_DAY * US_PER_SECOND,
        }
    )
    out = terminal_features(frame, history, params)
    with mock.patch.object(terminal_module, "RECENCY_CHUNK", 4):  # several gathering passes
        chunked = terminal_features(frame, history, params)
    for name in (
        "terminal_recent_risk",
        "terminal_run_fraud_share",
        "terminal_days_since_fraud",
        "terminal_fraud_run_days",
    ):
        np.testing.assert_array_equal(chunked[name], out[name])
    recent, since, run, share = _recency_by_day(terminal, day, history, params)
    np.testing.assert_allclose(out["terminal_recent_risk"], recent, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(out["terminal_run_fraud_share"], share, rtol=1e-12, atol=1e-15)
    assert out["terminal_days_since_fraud"].tolist() == since.tolist()
    assert out["terminal_fraud_run_days"].tolist() == run.tolist()


@settings(max_examples=60, deadline=None)
@given(
    data=st.lists(
        st.tuples(st.integers(1, 3), st.integers(-1, 3), st.integers(0, 40 * SECONDS_PER_DAY)),
        min_size=1,
        max_size=40,
    )
)
def test_new_to_terminal_counts_the_users_earlier_payments_at_that_terminal(data):
    data = sorted(data, key=lambda row: (row[0], row[2]))
    user = np.array([d[0] for d in data])
    terminal = np.array([d[1] for d in data])
    seconds = np.array([d[2] for d in data])
    params = FraudParameters(anomaly_window_days=10)
    axis = TimeAxis(user, seconds * US_PER_SECOND, max_window_s=30 * SECONDS_PER_DAY)
    out = customer_terminal_features(terminal, axis, params)
    window = 10 * SECONDS_PER_DAY
    for i in range(len(data)):
        if terminal[i] < 0:
            assert np.isnan(out["customer_terminal_nb_tx_10d"][i])
            assert np.isnan(out["customer_new_to_terminal"][i])
            continue
        earlier = [
            j
            for j in range(i)
            if user[j] == user[i]
            and terminal[j] == terminal[i]
            and seconds[i] - window <= seconds[j] <= seconds[i]
        ]
        assert out["customer_terminal_nb_tx_10d"][i] == len(earlier)
        assert out["customer_new_to_terminal"][i] == (0 if earlier else 1)


def test_terminal_profile_share_of_new_customers_and_amount_zscore():
    day_us = SECONDS_PER_DAY * US_PER_SECOND
    # terminal 5: users 1 and 2 pay 10 USD every day of days 100..109 (regulars); on day 110
    # three unknown users pay 200 USD; the scored rows are on day 111 (profile: days 104..110)
    rows = [(u, 100 + d, 10) for d in range(11) for u in (1, 2)]
    rows += [(10 + k, 110, 200) for k in range(3)]
    rows += [(1, 111, 10), (99, 111, 300)]
    frame = pd.DataFrame(
        {
            "transaction_id": np.arange(1, len(rows) + 1),
            "user_id": [r[0] for r in rows],
            "terminal_id": 5,
            "ts_us": [r[1] * day_us + 3_600 * US_PER_SECOND for r in rows],
            "amount_units": [r[2] * 10_000 for r in rows],
            "usd_units": [r[2] * 10_000 for r in rows],
            "currency": "USD",
        }
    )
    params = FraudParameters(terminal_profile_features=True, terminal_profile_days=7)
    days = terminal_days(frame, np.array([], dtype=np.int64), params)
    history = TerminalHistory(days)
    assert history.has_profile
    # day 100: both regulars new; days 101..109: none new; day 110: the three strangers;
    # day 111: user 99
    assert days.set_index("day")["n_new"].to_dict() == {
        100: 2,
        **{d: 0 for d in range(101, 110)},
        110: 3,
        111: 1,
    }
    scored = frame.iloc[-2:].reset_index(drop=True)
    out = terminal_features(scored, history, params)
    # days 104..110: 14 regular payments + 3 new = 17, 3 of them by new customers
    assert out["terminal_profile_nb_tx_7d"].tolist() == [17, 17]
    assert np.allclose(out["terminal_new_customer_share_7d"], 3 / 17)
    logs = np.log1p(np.array([10.0] * 14 + [200.0] * 3))
    expected = (np.log1p(np.array([10.0, 300.0])) - logs.mean()) / logs.std(ddof=1)
    assert np.allclose(out["terminal_amount_zscore"], expected)
    assert out["terminal_amount_zscore"][1] > 1 > out["terminal_amount_zscore"][0]


def test_terminal_profile_on_without_a_profile_is_refused():
    frame = pd.DataFrame({"terminal_id": [1], "user_id": [1], "ts_us": [0], "usd_units": [10]})
    with pytest.raises(FraudAnalysisError, match="TERMINAL_PROFILE_FEATURES"):
        terminal_features(
            frame, TerminalHistory.empty(), FraudParameters(terminal_profile_features=True)
        )


def test_terminal_signal_customers_counts_recent_customers_unusual_elsewhere():
    day_us = SECONDS_PER_DAY * US_PER_SECOND
    # user 1 pays 10 USD at terminal 5 (morning) and 6 (noon) every day of days 100..109; on
    # day 110 it pays 100 USD at terminal 6: 10x its median, a spending anomaly at terminal 6.
    # User 2 does the same at terminal 5 only and stays ordinary.
    rows = [(1, 5, d, 8, 10) for d in range(100, 110)] + [
        (1, 6, d, 12, 10) for d in range(100, 110)
    ]
    rows += [(2, 5, d, 9, 10) for d in range(100, 112)]
    rows += [(1, 6, 110, 12, 100)]
    rows.sort(key=lambda r: (r[0], r[2], r[3]))
    frame = pd.DataFrame(
        {
            "transaction_id": np.arange(1, len(rows) + 1),
            "user_id": [r[0] for r in rows],
            "terminal_id": [r[1] for r in rows],
            "ts_us": [r[2] * day_us + r[3] * 3_600 * US_PER_SECOND for r in rows],
            "amount_units": [r[4] * 10_000 for r in rows],
            "usd_units": [r[4] * 10_000 for r in rows],
            "currency": "USD",
        }
    )
    params = FraudParameters(terminal_profile_features=True, terminal_profile_days=7)
    days = terminal_days(frame, np.array([], dtype=np.int64), params)
    signals = days[days["n_signal"] > 0]
    # terminal 5 (where user 1 had paid) gets the signal of day 110, not terminal 6 itself
    assert signals[["terminal_id", "day", "n_signal"]].values.tolist() == [[5, 110, 1]]
    scored = frame[(frame["user_id"] == 2) & (frame["ts_us"] >= 110 * day_us)]
    out = terminal_features(scored.reset_index(drop=True), TerminalHistory(days), params)
    # day 110 looks at days 103..109 (nothing yet), day 111 at 104..110
    assert out["terminal_signal_customers_7d"].tolist() == [0, 1]


def _random_users(seed: int) -> pd.DataFrame:
    """Forty days of 30 users paying at 8 terminals, a few of them with unusual amounts."""
    rng = np.random.default_rng(seed)
    n = 1_500
    user = rng.integers(1, 31, n)
    ts = (100 * SECONDS_PER_DAY + rng.integers(0, 40 * SECONDS_PER_DAY, n)) * US_PER_SECOND
    usd = rng.integers(5, 60, n) * np.where(rng.random(n) < 0.03, 20, 1) * 10_000
    usd[rng.random(n) < 0.02] = -1  # no ECB rate
    frame = pd.DataFrame(
        {
            "transaction_id": np.arange(1, n + 1),
            "user_id": user,
            "terminal_id": np.where(rng.random(n) < 0.05, -1, rng.integers(1, 9, n)),
            "ts_us": ts,
            "amount_units": np.abs(usd),
            "usd_units": usd,
            "currency": "USD",
        }
    )
    return sort_frame(frame)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_terminal_profile_of_pages_of_users_adds_up_to_the_whole(seed: int):
    """The replica computes the profile page by page (users split across pages): the sums of
    the pages' tables must be the table computed on every user at once."""
    frame = _random_users(seed)
    params = FraudParameters(terminal_profile_features=True, anomaly_min_history=3)
    first_day = 110
    whole = terminal_profile_days(frame, params, first_day=first_day)
    pages = [
        terminal_profile_days(frame[frame["user_id"].isin(users)], params, first_day=first_day)
        for users in (range(1, 8), range(8, 20), range(20, 31))
    ]
    added = add_profiles(pages)
    columns = ["terminal_id", "day", "n_tx", *PROFILE_COLUMNS]
    key = ["terminal_id", "day"]
    left = whole[columns].sort_values(key).reset_index(drop=True)
    right = added[columns].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(left, right, check_dtype=False)
    assert whole["day"].min() >= first_day and whole["n_signal"].sum() > 0
    # and the history built from it answers like the one of the in-memory path
    fraud_ids = frame["transaction_id"].to_numpy()[::50]
    days = terminal_days(frame, fraud_ids, params)
    joined = with_profile(terminal_days(frame, fraud_ids), added)
    scored = frame[frame["ts_us"] >= 125 * SECONDS_PER_DAY * US_PER_SECOND].reset_index(drop=True)
    frauds = fraud_customer_days(frame, fraud_ids)
    expected = terminal_features(scored, TerminalHistory(days, frauds), params)
    got = terminal_features(scored, TerminalHistory(joined, frauds), params)
    for name, values in expected.items():
        if values.dtype == object:  # words for a reason
            assert values.tolist() == got[name].tolist(), name
        else:
            assert np.allclose(values, got[name], equal_nan=True), name


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sort_frame_orders_by_user_time_id_whether_or_not_already_sorted(seed: int):
    """An ordered frame skips the sort (the streaming scorer's case): the result is the stable
    lexsort's either way, ties kept in their order, with a fresh index."""
    rng = np.random.default_rng(seed)
    n = 200
    frame = pd.DataFrame(
        {
            "transaction_id": rng.integers(1, 60, n),  # repeated ids: ties on every key
            "user_id": rng.integers(1, 5, n),
            "ts_us": rng.integers(0, 20, n),
            "tag": np.arange(n),  # tells the order of ties
        }
    )
    order = np.lexsort(
        (frame["transaction_id"].to_numpy(), frame["ts_us"].to_numpy(), frame["user_id"].to_numpy())
    )
    expected = frame.iloc[order].reset_index(drop=True)
    pd.testing.assert_frame_equal(sort_frame(frame), expected)
    already = expected.set_axis(np.arange(n) + 1_000)  # sorted, with another index
    pd.testing.assert_frame_equal(sort_frame(already), expected)
    swapped = expected.iloc[[1, 0, *range(2, n)]]
    if not swapped.iloc[:2][["user_id", "ts_us", "transaction_id"]].duplicated().any():
        pd.testing.assert_frame_equal(sort_frame(swapped), expected)


def _bursty_users(seed: int) -> pd.DataFrame:
    """Sixty days of 12 users: ordinary payments, card-testing bursts (small charges minutes
    apart), near-line amounts hours apart, unknown USD amounts and payments without terminal,
    with many payments in the same second (ties on the time key)."""
    rng = np.random.default_rng(seed)
    n = 2_000
    user = rng.integers(1, 13, n)
    seconds = 100 * SECONDS_PER_DAY + rng.integers(0, 60 * SECONDS_PER_DAY, n)
    burst = rng.random(n) < 0.3  # packed into a few minutes of a few days
    seconds[burst] = 130 * SECONDS_PER_DAY + rng.integers(0, 3, burst.sum()) * SECONDS_PER_DAY
    seconds[burst] += rng.integers(0, 40, burst.sum()) * 30
    kind = rng.random(n)
    usd = np.where(
        burst,
        rng.integers(1, 45, n) * 10_000,
        np.where(
            kind < 0.1, rng.integers(9_000, 10_000, n) * 10_000, rng.integers(20, 900, n) * 10_000
        ),
    )
    usd[rng.random(n) < 0.03] = -1
    frame = pd.DataFrame(
        {
            "transaction_id": rng.permutation(n) + 1,
            "user_id": user,
            "terminal_id": np.where(rng.random(n) < 0.05, -1, rng.integers(1, 9, n)),
            "ts_us": seconds * US_PER_SECOND,
            "amount_units": np.abs(usd),
            "usd_units": usd,
            "currency": "USD",
        }
    )
    return sort_frame(frame)


def _axis(frame: pd.DataFrame, params: FraudParameters) -> TimeAxis:
    return TimeAxis(
        frame["user_id"].to_numpy(),
        frame["ts_us"].to_numpy(),
        max_window_s=int(params.lookback_days * SECONDS_PER_DAY),
    )


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_customer_features_at_query_rows_are_the_full_frames(seed: int):
    """The streaming scorer and the nightly pages compute customer features only at the rows
    they score (`at`), with windows read from every row: each feature must be bit-for-bit the
    full frame's at those rows (bursts, groups and the spending baseline included)."""
    frame = _bursty_users(seed)
    params = FraudParameters()
    axis = _axis(frame, params)
    full = customer_features(frame, axis, params)
    rng = np.random.default_rng(seed)
    for at in (
        np.flatnonzero(frame["ts_us"].to_numpy() >= 125 * SECONDS_PER_DAY * US_PER_SECOND),
        np.sort(rng.choice(len(frame), 150, replace=False)),
        np.arange(0),
    ):
        partial = customer_features(frame, axis, params, at=at)
        assert partial.keys() == full.keys()
        for name, values in full.items():
            np.testing.assert_array_equal(partial[name], values[at], err_msg=name)
    assert full["velocity_burst_nb_tx"].max() >= params.velocity_min_count
    assert full["structuring_group_nb_tx"].max() >= params.structuring_min_count


@settings(max_examples=100, deadline=None)
@given(
    pairs=st.lists(
        st.tuples(
            st.integers(-3, 3) | st.integers(-(2**40), 2**40),
            st.integers(-5, 5) | st.integers(0, 2**62),
        ),
        max_size=40,
    )
)
def test_order_by_is_the_stable_two_key_lexsort(pairs):
    """One packed stable sort when both keys fit in 62 bits, `lexsort` otherwise: the same
    order, ties included."""
    major = np.array([p[0] for p in pairs], dtype=np.int64)
    minor = np.array([p[1] for p in pairs], dtype=np.int64)
    np.testing.assert_array_equal(order_by(major, minor), np.lexsort((minor, major)))


@pytest.mark.parametrize("seed", [1, 2])
def test_recent_anomalies_count_earlier_payments_far_above_the_current_median(seed: int):
    """`customer_recent_anomalies_<r>d` against brute force: the user's earlier baseline
    payments of [t - r days, t) at >= `anomaly_ratio` x the row's own 30-day median."""
    frame = _bursty_users(seed)
    params = FraudParameters()
    out = customer_features(frame, _axis(frame, params), params)
    counts = out[f"customer_recent_anomalies_{params.anomaly_repeat_days}d"]
    median = out[f"customer_median_amount_{params.anomaly_window_days}d"]
    baseline = (
        (frame["usd_units"].to_numpy() >= 0)
        & (out["velocity_burst_nb_tx"] == 0)
        & (out["structuring_group_nb_tx"] == 0)
    )
    usd = frame["usd_units"].to_numpy() / 10_000
    user, seconds = frame["user_id"].to_numpy(), frame["ts_us"].to_numpy() // US_PER_SECOND
    window = params.anomaly_repeat_days * SECONDS_PER_DAY
    for i in range(len(frame)):
        earlier = (
            (user == user[i]) & (seconds >= seconds[i] - window) & (seconds < seconds[i]) & baseline
        )
        expected = (
            int((usd[earlier] >= params.anomaly_ratio * median[i]).sum()) if median[i] > 0 else 0
        )
        assert counts[i] == expected, i
    assert counts.max() >= params.anomaly_repeat_min  # the frame exercises the repeat bar


def test_recent_anomalies_on_a_hand_made_history():
    """A user paying 50 USD a day for 20 days, then 200 and 300 USD within a week: the next
    payment sees both; one 8 days after the first sees only the second (hand-computed)."""
    day = SECONDS_PER_DAY * US_PER_SECOND
    usd = [50] * 20 + [200, 300, 60, 60]
    at = [d * day for d in range(20)] + [20 * day, 22 * day, 23 * day, 28 * day + 1]
    frame = sort_frame(
        pd.DataFrame(
            {
                "transaction_id": np.arange(1, len(usd) + 1),
                "user_id": 1,
                "terminal_id": 5,
                "ts_us": np.array(at, dtype=np.int64) + 100 * day,
                "amount_units": np.array(usd) * 10_000,
                "usd_units": np.array(usd) * 10_000,
                "currency": "USD",
            }
        )
    )
    params = FraudParameters()
    axis = TimeAxis(
        frame["user_id"].to_numpy(), frame["ts_us"].to_numpy(), max_window_s=31 * 86_400
    )
    out = customer_features(frame, axis, params)
    counts = out["customer_recent_anomalies_7d"]
    assert counts.tolist() == [0] * 21 + [1, 2, 1]


def test_repeat_window_longer_than_the_anomaly_window_is_refused():
    with pytest.raises(ValueError, match="anomaly_repeat_days"):
        FraudParameters(anomaly_repeat_days=40, anomaly_window_days=30)
