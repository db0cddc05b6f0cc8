"""The transaction frame's layout and units, its (user, time) order, and the windows on it.

Every feature (`engine.features` has the catalogue) is built from these: a window is a per-user
(or per-terminal) range found with `searchsorted` on one flat time key, and sums are
differences of cumulative sums: no Python loop per row and no per-group `groupby` overhead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Columns and dtypes of a transaction frame, the engine's input.
TX_DTYPES: dict[str, str] = {
    "transaction_id": "int64",
    "user_id": "int64",
    "terminal_id": "int64",  # -1: no terminal
    "ts_us": "int64",  # occurred_at, microseconds since 1970-01-01 UTC
    "amount_units": "int64",  # amount * 10^4 (DECIMAL(19,4) exactly)
    "usd_units": "int64",  # amount_usd * 10^4; -1 when unknown
    "currency": "object",
}


UNITS_PER_USD = 10_000


SECONDS_PER_DAY = 86_400


US_PER_SECOND = 1_000_000


def usd_threshold_units(amount: object) -> int:
    """Largest whole number of 10^-4 USD at or below `amount` (Decimal-exact thresholds)."""
    from decimal import ROUND_FLOOR, Decimal

    return int((Decimal(str(amount)) * UNITS_PER_USD).to_integral_value(rounding=ROUND_FLOOR))


def sort_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows ordered by user, time, id: the order every window below relies on.

    A frame already in that order (the streaming scorer's batches are built sorted) is only
    given a fresh index: one linear check instead of a sort and a copy of every column.
    """
    tx = frame["transaction_id"].to_numpy()
    ts = frame["ts_us"].to_numpy()
    user = frame["user_id"].to_numpy()
    if _in_order(user, ts, tx):
        return frame.reset_index(drop=True)
    order = np.lexsort((tx, ts, user))
    return frame.iloc[order].reset_index(drop=True)


def in_order(frame: pd.DataFrame) -> bool:
    """Whether a frame's rows are already in (user, time, id) order (`sort_frame`'s)."""
    return _in_order(
        frame["user_id"].to_numpy(), frame["ts_us"].to_numpy(), frame["transaction_id"].to_numpy()
    )


def order_by(major: np.ndarray, minor: np.ndarray) -> np.ndarray:
    """`np.lexsort((minor, major))` of two integer keys, as one stable sort when it can.

    When both keys' ranges fit together in 62 bits they are packed into one int64 key sorted
    with `kind="stable"`: the same order (ties keep their positions, as with `lexsort`) about
    ten times faster on a streaming batch's frame, whose rows are in long sorted runs already
    (3.5 ms -> 0.36 ms for 9,000 rows sorted by customer and terminal).
    """
    if len(major) == 0:
        return np.zeros(0, dtype=np.intp)
    major_lo, minor_lo = int(major.min()), int(minor.min())
    major_bits = (int(major.max()) - major_lo).bit_length()
    minor_bits = (int(minor.max()) - minor_lo).bit_length()
    if major_bits + minor_bits > 62:
        return np.lexsort((minor, major))
    key = ((major.astype(np.int64) - major_lo) << minor_bits) | (minor.astype(np.int64) - minor_lo)
    return np.argsort(key, kind="stable")


def _in_order(user: np.ndarray, ts: np.ndarray, tx: np.ndarray) -> bool:
    """Whether rows are already in (user, time, id) order (equal keys count as ordered: the
    stable sort would keep them as they are)."""
    if len(user) < 2:
        return True
    d_user, d_ts, d_tx = np.diff(user), np.diff(ts), np.diff(tx)
    return bool(np.all((d_user > 0) | ((d_user == 0) & ((d_ts > 0) | ((d_ts == 0) & (d_tx >= 0))))))


class TimeAxis:
    """One flat time key for rows sorted by (user, time): windows never cross users.

    key = user rank * gap + seconds since the first row, with a gap larger than the data's span
    plus any window, so `searchsorted(key, key - window)` finds the start of the user's own
    window in one vectorised call.
    """

    def __init__(self, user_id: np.ndarray, ts_us: np.ndarray, *, max_window_s: int) -> None:
        seconds = ts_us // US_PER_SECOND
        n = len(user_id)
        new_user = np.ones(n, dtype=bool)
        if n:
            new_user[1:] = user_id[1:] != user_id[:-1]
            origin = int(seconds.min())
            gap = int(seconds.max()) - origin + max_window_s + 1
        else:
            origin, gap = 0, 1
        self.rank = np.cumsum(new_user) - 1
        self.key = self.rank * gap + (seconds - origin)
        self.gap = gap

    def __len__(self) -> int:
        return len(self.key)

    def since(
        self, window_s: float, *, include_current: bool, at: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """[lo, hi) row ranges: (t - w, t] with the current row, else [t - w, t) without it.

        With `at` (row positions), the ranges of those rows only, still over every row: the
        same numbers as `since(...)[at]` for two binary searches per query row.
        """
        key = self.key if at is None else self.key[at]
        if include_current:
            lo = np.searchsorted(self.key, key - window_s, side="right")
            hi = np.arange(1, len(self.key) + 1) if at is None else at + 1
        else:
            lo = np.searchsorted(self.key, key - window_s, side="left")
            hi = np.searchsorted(self.key, key, side="left")
        return lo, hi

    def reaching(self, at: np.ndarray, window_s: float) -> np.ndarray:
        """Mask of the rows the [t - w, t) windows of the rows `at` (sorted positions) can
        read: each user's rows from `window_s` before its first row of `at` on."""
        first_key = np.full(int(self.rank[-1]) + 1 if len(self.rank) else 0, np.iinfo(np.int64).max)
        ranks, first = np.unique(self.rank[at], return_index=True)
        first_key[ranks] = self.key[at][first] - window_s
        return self.key >= first_key[self.rank]

    def restricted(self, mask: np.ndarray) -> TimeAxis:
        """The axis of the rows where `mask` (same keys: windows inside them are unchanged)."""
        axis = object.__new__(TimeAxis)
        axis.rank, axis.key, axis.gap = self.rank[mask], self.key[mask], self.gap
        return axis

    def rolling_median(self, values: np.ndarray, window_s: int) -> np.ndarray:
        """Median of `values` over [t - w, t) of the same user (NaN when empty or all NaN)."""
        index = pd.DatetimeIndex(self.key.astype("datetime64[s]"))
        series = pd.Series(values, index=index)
        return series.rolling(f"{int(window_s)}s", closed="left").median().to_numpy()


def window_sums(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Sum of `values[lo:hi]` for every row (prefix sums; exact for integers)."""
    prefix = np.concatenate(([0], np.cumsum(values)))
    return prefix[hi] - prefix[lo]


@dataclass(frozen=True)
class Groups:
    """Rows covered by windows that met a condition, joined into groups (bursts)."""

    member: np.ndarray  # bool per row
    group: np.ndarray  # group number per row, -1 outside
    size: np.ndarray  # per group
    first: np.ndarray  # first row index per group
    last: np.ndarray  # last row index per group


def covering_groups(key: np.ndarray, lo: np.ndarray, hit: np.ndarray, window_s: float) -> Groups:
    """Mark every row inside a window [lo[i], i] with `hit[i]`, then join overlapping windows.

    Consecutive marked rows closer than the window belong to the same group; users never share
    one because the flat key puts a gap wider than any window between users.
    """
    n = len(key)
    ends = np.flatnonzero(hit)
    delta = np.bincount(lo[ends], minlength=n + 1) - np.bincount(ends + 1, minlength=n + 1)
    member = np.cumsum(delta)[:n] > 0
    rows = np.flatnonzero(member)
    group = np.full(n, -1, dtype=np.int64)
    if len(rows) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Groups(member, group, empty, empty, empty)
    starts = np.ones(len(rows), dtype=bool)
    starts[1:] = (np.diff(rows) > 1) | (np.diff(key[rows]) > window_s)
    numbers = np.cumsum(starts) - 1
    group[rows] = numbers
    size = np.bincount(numbers)
    first = rows[starts]
    last = np.append(rows[np.flatnonzero(starts)[1:] - 1], rows[-1])
    return Groups(member, group, size, first, last)


def expand_ranges(start: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every index of the ranges [start, start + size), flat: (range number, index) per
    element. One vectorised gather instead of a Python loop over ranges."""
    owner = np.repeat(np.arange(len(start)), size)
    first = np.cumsum(size) - size
    return owner, start[owner] + np.arange(int(size.sum())) - first[owner]


def unsort(values: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Values computed on `frame.iloc[order]` put back in the frame's own row order."""
    out = np.empty_like(values)
    out[order] = values
    return out
