"""What a customer's own payments show, known as soon as the payment is (no label is read).

The Handbook's customer windows, the spending baseline and the anomalies against it, payments
new to a terminal, card-testing bursts and structuring groups (`engine.features` has the
catalogue). Bursts and groups are marked on every row they contain, not only on the row that
completes them: the analysis runs after the fact, so the first charges of a card-testing
burst are as flagged as the last.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from ledgerguard.fraud.engine.windows import (
    SECONDS_PER_DAY,
    UNITS_PER_USD,
    Groups,
    TimeAxis,
    covering_groups,
    expand_ranges,
    order_by,
    unsort,
    usd_threshold_units,
    window_sums,
)
from ledgerguard.settings.fraud import FraudParameters


def customer_features(
    frame: pd.DataFrame, axis: TimeAxis, params: FraudParameters, *, at: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Handbook customer windows, the spending baseline, velocity bursts and structuring groups.

    With `at` (sorted row positions: the rows to score), the features of those rows only, the
    same numbers as `customer_features(...)[name][at]`: every window still reads every row (the
    earlier ones fill it), but the per-row window searches are made for the query rows only. A
    streaming batch scores a few hundred rows against its users' thousands of window rows, a
    nightly page its interval against a month of lookback rows.
    The bursts and structuring groups stay over every row (a group is found from all its
    members); the customer-terminal regrouping (one sort) and the rolling median of the
    spending baseline (a hot customer's query rows each have a window of hundreds of rows:
    gathering them cost ten times pandas' running median) run over the rows the query rows'
    windows reach: each user's rows from `anomaly_window_days` before its first query row on.
    """
    usd_known = frame["usd_units"].to_numpy() >= 0
    units = frame["usd_units"].to_numpy()
    amount_usd = np.where(usd_known, units / UNITS_PER_USD, np.nan)
    query = slice(None) if at is None else at
    out: dict[str, np.ndarray] = {"amount_usd": amount_usd[query]}

    known_amount = np.where(usd_known, amount_usd, 0.0)
    for days in params.customer_windows_days:
        lo, hi = axis.since(days * SECONDS_PER_DAY, include_current=True, at=at)
        out[f"customer_nb_tx_{days}d"] = hi - lo
        n_known = window_sums(usd_known.astype(np.int64), lo, hi)
        total = window_sums(known_amount, lo, hi)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"customer_avg_amount_{days}d"] = np.where(n_known > 0, total / n_known, np.nan)

    groups = _velocity(frame, axis, usd_known, units, params) | _structuring(
        axis, usd_known, units, params
    )
    out |= {name: values[query] for name, values in groups.items()}
    a = params.anomaly_window_days
    window_s = a * SECONDS_PER_DAY
    # The customer-terminal counts and the baseline median read [t - a, t): with `at`, over
    # the rows those windows reach only (a streaming batch re-scores its users' newest rows,
    # whose windows are a fraction of the frame); the same numbers, the windows being whole.
    reach, reach_axis, reach_query = None, axis, query
    if at is not None:
        reach = axis.reaching(at, window_s)
        if not reach.all():
            reach_axis = axis.restricted(reach)
            reach_query = (np.cumsum(reach) - 1)[at]
        else:
            reach = None
    terminal = frame["terminal_id"].to_numpy()
    pairs = customer_terminal_features(
        terminal if reach is None else terminal[reach], reach_axis, params
    )
    out |= {name: values[reach_query] for name, values in pairs.items()}

    # The spending baseline leaves out card-testing bursts and structuring groups: twenty test
    # charges of 1 USD are not what the user normally spends, and would make every later
    # ordinary payment look like an anomaly.
    baseline = (
        usd_known & (groups["velocity_burst_nb_tx"] == 0) & (groups["structuring_group_nb_tx"] == 0)
    )
    lo, hi = axis.since(window_s, include_current=False, at=at)
    out[f"customer_hist_nb_tx_{a}d"] = window_sums(baseline.astype(np.int64), lo, hi)
    values = np.where(baseline, amount_usd, np.nan)
    median = reach_axis.rolling_median(values if reach is None else values[reach], window_s)[
        reach_query
    ]
    out[f"customer_median_amount_{a}d"] = median
    with np.errstate(invalid="ignore", divide="ignore"):
        out["amount_to_median_ratio"] = np.where(median > 0, out["amount_usd"] / median, np.nan)
    r = params.anomaly_repeat_days
    lo, hi = axis.since(r * SECONDS_PER_DAY, include_current=False, at=at)
    out[f"customer_recent_anomalies_{r}d"] = recent_anomalies(
        np.where(baseline, amount_usd, np.nan), lo, hi, median, params.anomaly_ratio
    )
    return out


#: Query rows per pass of `recent_anomalies`. Each pairs with its window's rows (18 on average
#: on the realistic generator, a few hundred for the busiest customers) at ~40 bytes a pair in
#: the temporary arrays: ~12 MiB a pass on average. 0.4 s of one core for 531k query rows
#: (9.5M pairs), about a fifth of `customer_features`.
ANOMALY_CHUNK = 16_384


def recent_anomalies(
    values: np.ndarray, lo: np.ndarray, hi: np.ndarray, median: np.ndarray, ratio: float
) -> np.ndarray:
    """Per query row, the rows `values[lo:hi]` at >= `ratio` x that row's own `median`.

    Measured against the *current* row's baseline, not each earlier row's own: the earlier
    rows then need no history beyond the window the median already reads, so every path (a
    nightly page's lookback, the scorer's kept rows) gives the same count. NaN values (outside
    the baseline) and a NaN or zero median count nothing.
    """
    counts = np.zeros(len(lo), dtype=np.int64)
    for first in range(0, len(lo), ANOMALY_CHUNK):
        part = slice(first, first + ANOMALY_CHUNK)
        start = lo[part]
        owner, row = expand_ranges(start, hi[part] - start)
        with np.errstate(invalid="ignore"):
            bar = np.where(median[part] > 0, ratio * median[part], np.nan)
            hit = values[row] >= bar[owner]
        counts[part] = np.bincount(owner[hit], minlength=len(start))
    return counts


def customer_terminal_features(
    terminal: np.ndarray, axis: TimeAxis, params: FraudParameters
) -> dict[str, np.ndarray]:
    """Has the user paid at this terminal before? Earlier payments in [t - a, t), a = anomaly window.

    A compromised terminal used with stolen cards, or a stolen card used at shops its owner
    never visits, shows as payments by customers new to the terminal; a customer's regular shop
    does not. The rows are regrouped by (user, terminal), keeping time order, and every group
    gets its own stretch of a flat key as in `TimeAxis`, so one `searchsorted` finds each
    window. The user's own lookback (the frame holds `lookback_days` before the interval)
    covers the window.
    """
    n = len(terminal)
    window_s = params.anomaly_window_days * SECONDS_PER_DAY
    a = params.anomaly_window_days
    if n == 0:
        empty = np.zeros(0)
        return {f"customer_terminal_nb_tx_{a}d": empty, "customer_new_to_terminal": empty}
    # stable sort: rows are in (user, time, id) order, so each (user, terminal) keeps time order
    order = order_by(axis.rank, terminal)
    pair_terminal, pair_user = terminal[order], axis.rank[order]
    new_pair = np.ones(n, dtype=bool)
    new_pair[1:] = (pair_terminal[1:] != pair_terminal[:-1]) | (pair_user[1:] != pair_user[:-1])
    seconds = (axis.key - axis.rank * axis.gap)[order]
    key = (np.cumsum(new_pair) - 1) * axis.gap + seconds
    earlier = np.arange(n) - np.searchsorted(key, key - window_s, side="left")
    has_terminal = terminal >= 0
    count = np.where(has_terminal, unsort(earlier, order).astype(float), np.nan)
    return {
        f"customer_terminal_nb_tx_{a}d": count,
        "customer_new_to_terminal": np.where(has_terminal, (count == 0).astype(float), np.nan),
    }


def _velocity(
    frame: pd.DataFrame,
    axis: TimeAxis,
    usd_known: np.ndarray,
    units: np.ndarray,
    params: FraudParameters,
) -> dict[str, np.ndarray]:
    small = small_charges(usd_known, units, params)
    key = axis.key[small]
    groups, count = velocity_groups(key, params)
    terminals = frame["terminal_id"].to_numpy()[small]
    member_rows = np.flatnonzero(groups.member)
    # distinct (group, terminal) pairs, counted per group: sorted by both (`order_by`), the
    # first of each run (a DataFrame's `drop_duplicates` cost ~1 ms per streaming batch,
    # `np.unique(axis=0)` a third of that)
    member_group, member_terminal = groups.group[member_rows], terminals[member_rows]
    pair = order_by(member_group, member_terminal)
    member_group, member_terminal = member_group[pair], member_terminal[pair]
    first = np.ones(len(pair), dtype=bool)
    first[1:] = (member_group[1:] != member_group[:-1]) | (
        member_terminal[1:] != member_terminal[:-1]
    )
    n_terminals = np.bincount(member_group[first], minlength=len(groups.size))
    minutes = (key[groups.last] - key[groups.first]) / 60 if len(groups.size) else np.zeros(0)
    g = groups.group
    return {
        "velocity_nb_tx": _spread(count, small),
        "velocity_burst_nb_tx": _spread(_by_group(groups.size, g), small),
        "velocity_burst_nb_terminals": _spread(_by_group(n_terminals, g), small),
        "velocity_burst_minutes": _spread(_by_group(minutes, g, 0.0), small, 0.0),
    }


def small_charges(usd_known: np.ndarray, units: np.ndarray, params: FraudParameters) -> np.ndarray:
    """Rows whose USD amount is at most `velocity_small_amount_usd` (what a burst counts)."""
    return usd_known & (units <= usd_threshold_units(params.velocity_small_amount_usd))


def velocity_groups(key: np.ndarray, params: FraudParameters) -> tuple[Groups, np.ndarray]:
    """The card-testing bursts among small charges (`key`: their `TimeAxis` key), and each
    charge's count of small charges in (t - window, t]."""
    window_s = params.velocity_window_minutes * 60
    lo = np.searchsorted(key, key - window_s, side="right")
    count = np.arange(1, len(key) + 1) - lo
    return covering_groups(key, lo, count >= params.velocity_min_count, window_s), count


def group_spans(
    key: np.ndarray, units: np.ndarray, present: np.ndarray, params: FraudParameters
) -> np.ndarray:
    """Per row, its velocity burst's and structuring group's (first row, last row, size), -1
    outside one, among the rows where `present` (`key`: `TimeAxis` key, sorted by user, time;
    `units`: USD x 10^4, -1 unknown).

    A group is a run of consecutive small (near-line) rows, so two sets of rows give a row the
    same group features exactly when they give it the same span: what the streaming scorer
    compares, before and after a batch, to find the rows whose burst or group changed.
    """
    spans = np.full((len(key), 6), -1, dtype=np.int64)
    known = present & (units >= 0)
    for column, rows in (
        (0, np.flatnonzero(small_charges(known, units, params))),
        (3, np.flatnonzero(near_line(known, units, params))),
    ):
        if column == 0:
            groups, _ = velocity_groups(key[rows], params)
        else:
            groups = structuring_groups(key[rows], units[rows], params)
        inside = np.flatnonzero(groups.member)
        group = groups.group[inside]
        spans[rows[inside], column] = rows[groups.first[group]]
        spans[rows[inside], column + 1] = rows[groups.last[group]]
        spans[rows[inside], column + 2] = groups.size[group]
    return spans


def near_line(usd_known: np.ndarray, units: np.ndarray, params: FraudParameters) -> np.ndarray:
    """Rows whose USD amount is in [`structuring_floor_usd`, `large_amount_usd`], both included."""
    line = usd_threshold_units(params.large_amount_usd)
    floor = usd_threshold_units(params.structuring_floor_usd)
    return usd_known & (units >= floor) & (units <= line)


def structuring_groups(key: np.ndarray, units: np.ndarray, params: FraudParameters) -> Groups:
    """The structuring groups among near-line payments: THE definition, shared with compliance.

    `key` is the `TimeAxis` key of the near-line rows only (sorted by user, time), `units`
    their USD amounts in 10^-4 units. A window (t - `structuring_window_hours`, t] that holds at
    least `structuring_min_count` of them, together strictly above `large_amount_usd`, marks all
    its rows; overlapping marked windows of a user form one group.
    """
    line = usd_threshold_units(params.large_amount_usd)
    window_s = params.structuring_window_hours * 3600
    lo = np.searchsorted(key, key - window_s, side="right")
    count = np.arange(1, len(key) + 1) - lo
    total = window_sums(units, lo, np.arange(1, len(key) + 1))
    hit = (count >= params.structuring_min_count) & (total > line)
    return covering_groups(key, lo, hit, window_s)


def group_units(groups: Groups, units: np.ndarray) -> np.ndarray:
    """Exact sum of `units` per group."""
    inside = groups.group >= 0
    sums = np.zeros(len(groups.size), dtype=np.int64)
    np.add.at(sums, groups.group[inside], units[inside])
    return sums


def _structuring(
    axis: TimeAxis, usd_known: np.ndarray, units: np.ndarray, params: FraudParameters
) -> dict[str, np.ndarray]:
    near = near_line(usd_known, units, params)
    key = axis.key[near]
    groups = structuring_groups(key, units[near], params)
    g = groups.group
    total = group_units(groups, units[near])
    hours = (key[groups.last] - key[groups.first]) / 3600 if len(groups.size) else np.zeros(0)
    return {
        "structuring_group_nb_tx": _spread(_by_group(groups.size, g), near),
        "structuring_group_usd": _spread(_by_group(total / UNITS_PER_USD, g, 0.0), near, 0.0),
        "structuring_group_hours": _spread(_by_group(hours, g, 0.0), near, 0.0),
    }


def _by_group(per_group: np.ndarray, group: np.ndarray, fill: float | int = 0) -> np.ndarray:
    """Per-group values looked up for each row (`fill` outside every group)."""
    out = np.full(len(group), fill, dtype=np.result_type(per_group, type(fill)))
    inside = group >= 0
    out[inside] = per_group[group[inside]]
    return out


def _spread(values: np.ndarray, mask: np.ndarray, fill: float | int = 0) -> np.ndarray:
    """Values of a subset (rows where `mask`) placed back into a full-length array."""
    out = np.full(len(mask), fill, dtype=np.result_type(values, type(fill)))
    out[mask] = values
    return out


def customer_signal(customer: dict[str, np.ndarray], params: FraudParameters) -> np.ndarray:
    """Rows unusual for their own customer: a spending anomaly or a card-testing burst.

    The thresholds of the `spending_anomaly` and `velocity` rules, read from the customer
    features: what the engine sees at once on a customer, without any label.
    """
    ratio, bar = anomaly_bar(customer, params)
    return (np.nan_to_num(ratio) >= bar) | (
        customer["velocity_burst_nb_tx"] >= params.velocity_min_count
    )


def anomaly_bar(
    columns: Mapping[str, ArrayLike], params: FraudParameters
) -> tuple[np.ndarray, np.ndarray]:
    """(ratio to the user's median, the ratio at which `spending_anomaly` fires) per row.

    The ratio is NaN without a baseline (fewer than `anomaly_min_history` earlier payments).
    The bar is `anomaly_ratio`, lowered to `anomaly_repeat_ratio` for a user who already
    paid `anomaly_repeat_min` times at `anomaly_ratio` x the median in the last
    `anomaly_repeat_days`: a compromised card shows several such payments, the misused
    ones that cost only 2.5-3 times the usual among them.
    """
    a, r = params.anomaly_window_days, params.anomaly_repeat_days
    history = np.asarray(columns[f"customer_hist_nb_tx_{a}d"]) >= params.anomaly_min_history
    ratio = np.where(history, np.asarray(columns["amount_to_median_ratio"], dtype=float), np.nan)
    repeated = np.asarray(columns[f"customer_recent_anomalies_{r}d"]) >= params.anomaly_repeat_min
    lowered = min(params.anomaly_repeat_ratio, params.anomaly_ratio)
    bar = np.where(repeated, lowered, params.anomaly_ratio)
    return ratio, bar
