"""Online state of the streaming scorer, scored by the fraud engine's own `score_frame`.

One implementation of the rules: a micro-batch of new transactions is turned into the same
*transaction frame* the nightly pipeline builds from a replica page (the new rows plus the
windows of their users), and `fraud.engine.scoring.score_frame` scores it with the same
`FraudParameters` and, when configured, the same trained model.

What is kept in memory:

* **User windows** — every transaction of the partition's users (`user_id % N == K`) within
  `params.lookback_days` plus the revision window (`kept_us`) of the user's newest one, as one
  small NumPy record array per user (~60 bytes a transaction), with the last verdict the scorer
  gave it and the terminal history it was scored with. Older rows are dropped as new ones
  arrive, users idle longer than the lookback are dropped by `sweep`.
* **Terminal counts** — transactions and confirmed frauds per (terminal, day) of *every* user
  (terminals are shared across partitions), as `TerminalHistory` expects. `terminal_risk` of a
  transaction on day D reads days up to D - `label_delay_days` (the stream's parameters,
  `FraudParameters.at_payment_time`: one day older than the nightly run's horizon, since day
  D - delay is not fully labelled while D goes on), so the counts of today never matter today:
  the history object is rebuilt only when a count that a batch can see has changed (a label
  arrived, a back-dated transaction, or the day rolled over).

Revisions: the nightly engine marks *every* member of a card-testing burst or structuring group,
including the first ones, scored before the group was complete. The stream does the same by
re-scoring the recent rows of each batch's users (the revision window, `revision_us`) and
writing again those whose flag changed, so after the burst completes both scorers hold the same
flags. Those rows' windows are complete (the rows are kept `lookback_days` further back), so
their verdicts are the nightly run's — before, a revised row's 30-day windows lost their oldest
rows as the user's newest moved on and its verdict could differ — and a row's features change
only with the events `OnlineState._may_change` looks for: a batch re-scores those rows and its
new ones only, with the verdicts of re-scoring the whole revision window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ledgerguard.fraud.engine.customer_features import group_spans
from ledgerguard.fraud.engine.fx import fill_missing_usd
from ledgerguard.fraud.engine.scoring import score_frame
from ledgerguard.fraud.engine.terminal_history import (
    TerminalHistory,
    add_fraud_customers,
    add_profiles,
    empty_fraud_customers,
    with_profile,
)
from ledgerguard.fraud.engine.windows import (
    SECONDS_PER_DAY,
    TX_DTYPES,
    US_PER_SECOND,
    TimeAxis,
    order_by,
)
from ledgerguard.money import FxRates
from ledgerguard.realtime.stages import StageClock
from ledgerguard.settings.fraud import FraudParameters

if TYPE_CHECKING:
    from ledgerguard.fraud.engine.model import FraudModel

#: One kept transaction. `score_e4` is the last verdict's score x 10^4 (-1: not scored by this
#: process, e.g. read from the replica at start-up).
ROW_DTYPE = np.dtype(
    [
        ("transaction_id", "<i8"),
        ("user_id", "<i8"),
        ("terminal_id", "<i8"),
        ("ts_us", "<i8"),
        ("amount_units", "<i8"),
        ("usd_units", "<i8"),
        ("currency", "S3"),
        ("score_e4", "<i4"),
        ("flagged", "?"),
        ("version", "<i4"),
    ]
)
_US_PER_DAY = SECONDS_PER_DAY * US_PER_SECOND


def revision_us(params: FraudParameters) -> int:
    """How far back from a user's newest row the stream revises verdicts: the longer of the
    velocity and structuring windows (a burst or group that grows changes its earlier members)."""
    return int(
        max(params.velocity_window_minutes * 60, params.structuring_window_hours * 3600)
        * US_PER_SECOND
    )


def kept_us(params: FraudParameters) -> int:
    """How far back from a user's newest row its rows are kept: the lookback of every row the
    stream may revise (plus a second: windows are cut at whole seconds), so the windows of
    those rows are the nightly run's, complete."""
    return int(params.lookback_days * _US_PER_DAY) + revision_us(params) + US_PER_SECOND


def revision_days(params: FraudParameters) -> int:
    """Whole days of `revision_us`, plus one: the terminal history kept for revised rows."""
    return -(-revision_us(params) // _US_PER_DAY) + 1


@dataclass(frozen=True)
class Partition:
    """`K/N`: this scorer keeps and scores the users with `user_id % N == K`."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Partition:
        try:
            index, count = (int(part) for part in text.split("/"))
        except ValueError:
            raise ValueError(f"partition must look like K/N, e.g. 0/2 (got {text!r})") from None
        if count < 1 or not 0 <= index < count:
            raise ValueError(f"partition K/N needs 0 <= K < N (got {text!r})")
        return cls(index, count)

    @property
    def name(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, user_id: np.ndarray) -> np.ndarray:
        return user_id % self.count == self.index


def rows_from_frame(frame: pd.DataFrame) -> np.ndarray:
    """A transaction frame (`TX_DTYPES`) as kept rows, not yet scored."""
    rows = np.zeros(len(frame), dtype=ROW_DTYPE)
    for name in TX_DTYPES:
        values = frame[name].to_numpy()
        rows[name] = values.astype("S3") if name == "currency" else values
    rows["score_e4"] = -1
    rows["version"] = -1
    return rows


def _concatenate(parts: list[np.ndarray]) -> np.ndarray:
    """`np.concatenate` of `ROW_DTYPE` arrays, joined as bytes: NumPy works out the common
    type of structured arrays field by field for each part (~50 µs each, a third of the state
    stage with a few hundred users per batch), although here every part has the same."""
    return np.concatenate([np.ascontiguousarray(p).view(np.uint8) for p in parts]).view(ROW_DTYPE)


def _user_time_id_order(rows: np.ndarray, users: np.ndarray) -> np.ndarray:
    """The order of `rows` by (user, time, id), `users` being their distinct users, sorted.

    A batch's rows are its users' windows, each already in that order, followed by the new
    rows: one stable sort by (user rank, time) (`order_by`) is ~10x faster than a three-key
    `np.lexsort`. Rows of one user at the same microsecond stay in their positions, which is
    id order unless a new row has a smaller id than a kept one (then `lexsort` decides).
    """
    order = order_by(np.searchsorted(users, rows["user_id"]), rows["ts_us"])
    ts, ids, user = rows["ts_us"][order], rows["transaction_id"][order], rows["user_id"][order]
    tied = (ts[1:] == ts[:-1]) & (user[1:] == user[:-1])
    if (tied & (ids[1:] < ids[:-1])).any():
        return np.lexsort((rows["transaction_id"], rows["ts_us"], rows["user_id"]))
    return order


def frame_from_rows(rows: np.ndarray) -> pd.DataFrame:
    """Kept rows as the engine's transaction frame."""
    return pd.DataFrame(
        {
            name: _currency_texts(rows[name]) if name == "currency" else rows[name]
            for name in TX_DTYPES
        }
    )


def _currency_texts(codes: np.ndarray) -> pd.Series:
    """`S3` currency codes as the frame's object column of `str`.

    `astype(str).astype(object)` makes a string per row (~2.6 ms for the 9,000 rows of a busy
    batch's windows); a batch holds a handful of currencies, so each distinct code is decoded
    once: the three bytes read as one integer, unique, then looked up.
    """
    as_bytes = np.ascontiguousarray(codes).view(np.uint8).reshape(-1, 3).astype(np.int32)
    number = (as_bytes[:, 0] << 16) | (as_bytes[:, 1] << 8) | as_bytes[:, 2]
    distinct, index = np.unique(number, return_inverse=True)
    texts = np.array(
        [int(code).to_bytes(3, "big").rstrip(b"\0").decode("ascii") for code in distinct.tolist()],
        dtype=object,
    )
    # a Series of dtype object: the frame's constructor would infer pandas' `str` dtype
    return pd.Series(texts[index], dtype=object, copy=False)


#: `profile_of(first_day, stop_day)`: the terminal profile (`terminal_history.terminal_profile_days`
#: over every user) of days [first_day, stop_day), read from the replica.
ProfileLoader = Callable[[int, int], pd.DataFrame]


class TerminalCounts:
    """(terminal, day) -> transactions, confirmed frauds; `history()` for the engine.

    The confirmed frauds are kept per customer too ((terminal, customer, day), the
    `terminal_history.FRAUD_CUSTOMER_COLUMNS` table), as the nightly run reads them from the replica:
    `terminal_compromise_min_customers` counts the customers defrauded at a terminal.

    With the terminal profile on (`profile_of` given), also the profile of the finished days:
    a transaction of day D reads the profile of days before D only, which changes only when
    the day rolls over, so the profile of each finished day is read once — from the replica,
    by the nightly run's own function over every user (a scorer partition holds only its own
    users' windows), which blocks the stream for that read once a day.
    """

    def __init__(
        self,
        days: pd.DataFrame,
        params: FraudParameters,
        *,
        frauds: pd.DataFrame | None = None,
        profile: pd.DataFrame | None = None,
        profile_through: int | None = None,
        profile_of: ProfileLoader | None = None,
    ) -> None:
        self._params = params
        self._base = days[["terminal_id", "day", "n_tx", "n_fraud"]].copy()
        self._delta: dict[tuple[int, int], list[int]] = {}
        self._frauds = frauds  # None: customers unknown (the history then has none either)
        self._fraud_delta: dict[tuple[int, int, int], int] = {}
        self._changed_from_day: int | None = None  # earliest day changed since the last build
        self._profile = profile
        self._profile_through = profile_through  # last day whose profile is complete
        self._profile_of = profile_of
        self._history = self._build()
        self.rebuilds = 0

    @classmethod
    def empty(cls, params: FraudParameters) -> TerminalCounts:
        return cls(
            pd.DataFrame({"terminal_id": [], "day": [], "n_tx": [], "n_fraud": []}),
            params,
            frauds=empty_fraud_customers(),
        )

    def add(
        self,
        terminal_id: int,
        day: int,
        *,
        n_tx: int = 0,
        n_fraud: int = 0,
        user_id: int | None = None,
    ) -> None:
        """Count transactions, or (with the customer's `user_id`) confirmed frauds."""
        if n_fraud and user_id is None:
            raise ValueError("a confirmed fraud is counted with its customer's user_id")
        counts = self._delta.setdefault((terminal_id, day), [0, 0])
        counts[0] += n_tx
        counts[1] += n_fraud
        if n_fraud and self._frauds is not None:
            key = (terminal_id, int(user_id), day)  # type: ignore[arg-type]
            self._fraud_delta[key] = self._fraud_delta.get(key, 0) + n_fraud
        if self._changed_from_day is None or day < self._changed_from_day:
            self._changed_from_day = day

    def history(self, *, newest_day: int) -> TerminalHistory:
        """The history, rebuilt first if a change is visible to a transaction of `newest_day`."""
        changed = self._changed_from_day
        stale_profile = self._profile_through is not None and self._profile_through < newest_day - 1
        if stale_profile or (
            changed is not None and changed <= newest_day - self._params.label_delay_days
        ):
            self._rebuild(newest_day)
        return self._history

    def _build(self) -> TerminalHistory:
        if self._profile is None:
            return TerminalHistory(self._base, self._frauds)
        return TerminalHistory(with_profile(self._base, self._profile), self._frauds)

    def _rebuild(self, newest_day: int) -> None:
        delta = pd.DataFrame(
            [(t, d, c[0], c[1]) for (t, d), c in self._delta.items()],
            columns=["terminal_id", "day", "n_tx", "n_fraud"],
        )
        merged = pd.concat([self._base, delta], ignore_index=True)
        merged = merged.groupby(["terminal_id", "day"], as_index=False)[["n_tx", "n_fraud"]].sum()
        # the days that the rows the stream may still revise (a few days old) read
        oldest = newest_day - self._params.terminal_read_days - revision_days(self._params)
        self._base = merged[merged["day"] >= oldest].reset_index(drop=True)
        self._delta.clear()
        fraud_delta = pd.DataFrame(
            [(t, u, d, n) for (t, u, d), n in self._fraud_delta.items()],
            columns=["terminal_id", "user_id", "day", "n_fraud"],
        )
        if self._frauds is not None:
            frauds = add_fraud_customers([self._frauds, fraud_delta])
            self._frauds = frauds[frauds["day"] >= oldest].reset_index(drop=True)
        self._fraud_delta.clear()
        self._changed_from_day = None
        if self._profile is not None and self._profile_through is not None:
            if self._profile_of is not None and self._profile_through < newest_day - 1:
                fresh = self._profile_of(self._profile_through + 1, newest_day)
                self._profile = add_profiles([self._profile, fresh])
                self._profile_through = newest_day - 1
            first = newest_day - self._params.terminal_profile_days - revision_days(self._params)
            self._profile = self._profile[self._profile["day"] >= first].reset_index(drop=True)
        self._history = self._build()
        self.rebuilds += 1


_NO_IDS = np.empty(0, dtype=np.int64)
_NEVER = np.iinfo(np.int64).max


@dataclass
class BatchVerdicts:
    """Verdict rows (`scoring.VERDICT_COLUMNS`) of a batch: new transactions and revisions."""

    rows: pd.DataFrame
    new: int
    #: transaction ids of the revisions among `rows` (verdicts that replace an earlier one)
    revised_ids: np.ndarray = field(default_factory=lambda: _NO_IDS)

    @property
    def revised(self) -> int:
        return len(self.revised_ids)


@dataclass
class Merged:
    """A batch's rows merged into its users' windows (`OnlineState._merge`), nothing stored."""

    #: the users' kept rows and the new ones, sorted by (user, time, id)
    rows: np.ndarray
    #: rows the state did not hold before this batch
    fresh: np.ndarray
    #: rows of the batch itself: the fresh ones and those streamed again (a replay)
    named: np.ndarray
    #: each user's first row and number of rows in `rows`, and newest time
    starts: np.ndarray
    sizes: np.ndarray
    newest_us: np.ndarray

    def per_row(self, values: np.ndarray) -> np.ndarray:
        """A value per user repeated for each of the user's rows."""
        return np.repeat(values, self.sizes)


class OnlineState:
    """User windows and terminal counts of one partition; `score` runs the engine on a batch.

    `bounded` (the default) re-scores only the earlier rows whose verdict can have changed
    (see `_may_change`); False re-scores every row of the revision window, for the tests and
    the benchmark that compare both.
    """

    def __init__(
        self,
        params: FraudParameters,
        *,
        partition: Partition,
        terminals: TerminalCounts,
        fx: FxRates,
        model: FraudModel | None = None,
        bounded: bool = True,
    ) -> None:
        self.params = params
        self.partition = partition
        self.terminals = terminals
        self.bounded = bounded
        self._fx = fx
        self._model = model
        self._users: dict[int, np.ndarray] = {}
        self._lookback_us = int(params.lookback_days * _US_PER_DAY)
        self._kept_us = kept_us(params)
        self._revise_us = revision_us(params)
        self.newest_us = 0
        #: flagged verdicts a previous process wrote (`recall_flagged`): sorted ids, scores
        self._recalled: tuple[np.ndarray, np.ndarray] | None = None
        self._recalled_until_us = 0
        #: rows scored so far (new and re-scored): what `bounded` saves
        self.scored_rows = 0

    # --- what the state holds ----------------------------------------------------------------
    @property
    def users(self) -> int:
        return len(self._users)

    @property
    def transactions(self) -> int:
        return sum(len(rows) for rows in self._users.values())

    def load(self, frame: pd.DataFrame) -> None:
        """Add a page of the replica's transactions (start-up rebuild; the partition's users)."""
        frame = fill_missing_usd(frame, self._fx)
        rows = rows_from_frame(frame[self.partition.owns(frame["user_id"].to_numpy())])
        if len(rows):
            merged = self._merge(rows)
            newest = merged.per_row(merged.newest_us)
            self._store(merged.rows, merged.rows["ts_us"] >= newest - self._kept_us)

    def _merge(self, rows: np.ndarray) -> Merged:
        """The windows of the users of `rows` with `rows` added.

        One NumPy pass per batch, whatever its number of users: their kept rows and the new
        ones concatenated, ids already kept not added twice (the kept row wins: it carries the
        last verdict), sorted by (user, time, id). Nothing is stored yet (`_store`), so a batch
        that fails to score leaves the state as it was.
        """
        self.newest_us = max(self.newest_us, int(rows["ts_us"].max()))
        users = self._users
        batch_users = np.unique(rows["user_id"])
        known = [users[u] for u in batch_users.tolist() if u in users]
        combined = _concatenate([*known, rows]) if known else rows
        held = len(combined) - len(rows)
        fresh = np.zeros(len(combined), dtype=bool)
        fresh[held:] = True
        named = fresh
        ids = combined["transaction_id"]
        sorted_ids = np.sort(ids)
        if (sorted_ids[1:] == sorted_ids[:-1]).any():  # a replayed row (rare): drop it
            named = fresh | np.isin(ids, rows["transaction_id"])
            _, first = np.unique(ids, return_index=True)
            first = np.sort(first)
            combined, fresh, named = combined[first], fresh[first], named[first]
        order = _user_time_id_order(combined, batch_users)
        combined, fresh, named = combined[order], fresh[order], named[order]
        user = combined["user_id"]
        starts = np.flatnonzero(np.r_[True, user[1:] != user[:-1]])
        newest = np.maximum.reduceat(combined["ts_us"], starts)
        sizes = np.diff(np.r_[starts, len(combined)])
        return Merged(combined, fresh, named, starts, sizes, newest)

    def _store(self, combined: np.ndarray, keep: np.ndarray) -> None:
        """Each user's kept rows (of `_merge`) as that user's window, one small array each
        (copies: a view would keep the whole batch's array alive)."""
        kept = combined[keep]
        if len(kept) == 0:
            return
        user = kept["user_id"]
        starts = np.flatnonzero(np.r_[True, user[1:] != user[:-1]])
        ends = np.append(starts[1:], len(kept))
        users = self._users
        # plain slices: `np.split` costs ~10 µs of bookkeeping per user
        for owner, start, end in zip(
            user[starts].tolist(), starts.tolist(), ends.tolist(), strict=True
        ):
            users[owner] = kept[start:end].copy()

    def sweep(self) -> int:
        """Drop users idle for longer than the lookback (no row of theirs can be revised or
        read by a new row's windows any more); how many."""
        limit = self.newest_us - self._lookback_us
        if self.newest_us > self._recalled_until_us:
            self._recalled = None
        idle = [user for user, rows in self._users.items() if int(rows["ts_us"].max()) < limit]
        for user in idle:
            del self._users[user]
        return len(idle)

    def revision_ids(self) -> np.ndarray:
        """Ids of the kept rows a batch may still revise (within the revision window of the
        newest row): the rows whose earlier verdict `recall_flagged` looks up at start-up."""
        cutoff = self.newest_us - self._revise_us
        parts = [
            rows["transaction_id"][rows["ts_us"] >= cutoff]
            for rows in self._users.values()
            if rows["ts_us"][-1] >= cutoff
        ]
        return np.concatenate(parts) if parts else _NO_IDS

    def recall_flagged(self, transaction_ids: np.ndarray, scores_e4: np.ndarray) -> None:
        """The flagged verdicts already stored for rows of the state (a restart), so a batch
        compares with them as the process that wrote them would have.

        Rows read at start-up carry no verdict (`score_e4` -1), and `_compare` writes every
        one of those scored flagged: after each restart the first batch of each user rewrote
        every flagged verdict of the user's last 72 hours with the same flag — as many rows as
        the stream's own in the first seconds of `bench realtime`'s phase with the scorer, each
        also a wide `fraud_scores` row (benchmarks/README.md, "Session 8"). Applied to a
        batch's rows when it is scored (`_recall`). A stored *unflagged* verdict needs no
        recall: an unknown row and an unflagged one are both written only if scored flagged.
        """
        order = np.argsort(transaction_ids)
        # no row older than the revision window is revised: the look-up ends with it
        self._recalled_until_us = self.newest_us + self._revise_us
        self._recalled = (
            transaction_ids[order].astype(np.int64),
            scores_e4[order].astype(np.int32),
        )

    def _recall(self, combined: np.ndarray) -> None:
        """Give the rows of `combined` without a verdict the recalled flagged ones."""
        if self._recalled is None:
            return
        ids, scores = self._recalled
        unknown = np.flatnonzero(combined["score_e4"] < 0)
        if not len(unknown) or not len(ids):
            return
        wanted = combined["transaction_id"][unknown]
        at = np.minimum(np.searchsorted(ids, wanted), len(ids) - 1)
        hit = ids[at] == wanted
        combined["score_e4"][unknown[hit]] = scores[at[hit]]
        combined["flagged"][unknown[hit]] = True

    # --- the stream ---------------------------------------------------------------------------
    def count_transactions(self, frame: pd.DataFrame) -> None:
        """Terminal counts of new transactions of every user (terminals are shared)."""
        with_terminal = frame[frame["terminal_id"] >= 0]
        days = with_terminal["ts_us"].to_numpy() // _US_PER_DAY
        for terminal, day in zip(with_terminal["terminal_id"].tolist(), days.tolist(), strict=True):
            self.terminals.add(terminal, day, n_tx=1)

    def count_fraud(self, terminal_id: int, ts_us: int, change: int, *, user_id: int) -> None:
        """A confirmed fraud label appeared (+1) or went away (-1) on a customer's payment at
        a terminal."""
        self.terminals.add(terminal_id, ts_us // _US_PER_DAY, n_fraud=change, user_id=user_id)

    def score(self, frame: pd.DataFrame, *, clock: StageClock | None = None) -> BatchVerdicts:
        """Verdicts of the partition's transactions in `frame`, plus revisions.

        Rows the state already holds (streamed again after a restart: the start-up snapshot
        had them) are not added twice. A row older than its user's kept rows (a back-dated
        import) is scored with them but not kept. Revised: the rows of the batch's users
        within `revision_us` of the user's newest row (their windows are complete), only
        those whose features can have changed when `bounded`.
        """
        clock = clock or StageClock()
        with clock.stage("state"):
            owned = self.partition.owns(frame["user_id"].to_numpy())
            if not owned.all():  # (one partition owns every row: no copy)
                frame = frame[owned]
            if frame.empty:
                return BatchVerdicts(pd.DataFrame(), 0)
            frame = fill_missing_usd(frame, self._fx)
            new_ids = frame["transaction_id"].to_numpy()
            merged = self._merge(rows_from_frame(frame))
            combined = merged.rows
            self._recall(combined)
            ts = combined["ts_us"]
            # each user's revised rows: from the revision window before its earliest new row,
            # but not before the revision window of its newest row held so far (the rows
            # whose windows the state holds whole; a back-dated import revises no older row)
            earliest_new = np.minimum.reduceat(np.where(merged.named, ts, _NEVER), merged.starts)
            newest_held = np.maximum.reduceat(np.where(merged.fresh, -_NEVER, ts), merged.starts)
            start = merged.per_row(np.maximum(earliest_new, newest_held) - self._revise_us)
            # the frame: the windows of those rows (and the batch's rows); it is also what is
            # kept, so the next batch's rows before it are exactly the rows scored with here
            in_frame = merged.named | (ts >= start - (self._kept_us - self._revise_us))
            history = self.terminals.history(newest_day=int(ts[in_frame].max()) // _US_PER_DAY)
            version = self.terminals.rebuilds
            revisable = in_frame & (ts >= start)
            if self.bounded:
                revisable &= self._may_change(merged, in_frame, version)
            rescored = merged.named | revisable
            inside = np.flatnonzero(rescored)  # where the verdicts are, in this order
            self.scored_rows += len(inside)
            framed = combined[in_frame]
        counts: list[int] = []
        revised_ids: list[np.ndarray] = []

        def select(scores: pd.DataFrame) -> np.ndarray:
            write, new, revised = self._compare(scores, combined, new_ids, inside)
            counts.append(new)
            revised_ids.append(revised)
            return write

        with clock.stage("score"):
            rows = score_frame(
                frame_from_rows(framed),
                history,
                self.params,
                rows=rescored[in_frame],
                store_all=True,
                model=self._model,
                select=select,
            ).rows
        with clock.stage("state"):
            combined["version"][inside] = version
            self._store(combined, in_frame)
            return BatchVerdicts(
                rows,
                new=counts[0],
                revised_ids=np.concatenate(revised_ids) if revised_ids else _NO_IDS,
            )

    def _may_change(self, merged: Merged, in_frame: np.ndarray, version: int) -> np.ndarray:
        """The rows whose features, hence verdict, can differ from their last scoring.

        With complete windows (`kept_us`), a row's features are a function of the rows of its
        user in its windows, their bursts and groups, and the terminal history. So a row last
        scored with this history (`version`: `TerminalCounts.rebuilds`, -1 never) can change
        only when (a) a fresh row lands at or before its second, (b) its velocity burst or
        structuring group changed (`customer_features.group_spans` before and after the batch: a new
        member, a merge, a split, an oldest member no longer kept), or (c) a row at or before
        its second moved into or out of the spending baseline (burst and group members are
        left out of it). Everything else is the same input: the same score, the same flag.
        """
        rows = merged.rows
        units = rows["usd_units"]
        axis = TimeAxis(
            rows["user_id"], rows["ts_us"], max_window_s=self._kept_us // US_PER_SECOND + 1
        )
        before = group_spans(axis.key, units, ~merged.fresh, self.params)
        after = group_spans(axis.key, units, in_frame, self.params)
        both = in_frame & ~merged.fresh
        regrouped = both & (before != after).any(axis=1)
        was_member = (before[:, 0] >= 0) | (before[:, 3] >= 0)
        is_member = (after[:, 0] >= 0) | (after[:, 3] >= 0)
        rebased = both & (units >= 0) & (was_member != is_member)
        second = rows["ts_us"] // US_PER_SECOND
        moved = np.where(merged.fresh | rebased, second, _NEVER)
        since = np.minimum.reduceat(moved, merged.starts)
        return (rows["version"] != version) | regrouped | (second >= merged.per_row(since))

    def _compare(
        self, scores: pd.DataFrame, combined: np.ndarray, new_ids: np.ndarray, inside: np.ndarray
    ) -> tuple[np.ndarray, int, np.ndarray]:
        """Which verdicts to write (a mask over `scores`), how many are new, and the ids of the
        revisions: new transactions are written, and earlier ones whose *flag* changed.

        A burst or a structuring group that grows changes the features, hence the score, of
        every earlier member at each batch: rewriting them all made the write stage grow with
        the square of a busy customer's payments (a customer paying 15 times a second had
        hundreds of rows rewritten every 100 ms). What an analyst and the webhook act on is the
        flag, so only a flag that changes is written again; a member's score drifting inside
        the same flag is left to the nightly run, which rewrites every row it scores. Recorded
        in `combined`, so later batches compare with what was written."""
        ids = combined["transaction_id"]
        score_ids = scores["transaction_id"].to_numpy()
        at = _positions_of(ids, score_ids, inside)
        old = combined["score_e4"][at]
        old_flagged = combined["flagged"][at]
        score_e4 = np.round(scores["score"].to_numpy() * 10_000).astype(np.int32)
        flagged = scores["flagged"].to_numpy().astype(bool)
        is_new = np.isin(score_ids, new_ids)
        changed = np.where(
            old < 0,
            flagged,  # a verdict this process never gave: write flags only
            old_flagged != flagged,
        )
        write = is_new | changed
        combined["score_e4"][at[write]] = score_e4[write]
        combined["flagged"][at[write]] = flagged[write]
        return write, int(is_new.sum()), score_ids[write & ~is_new]


def _positions_of(ids: np.ndarray, wanted: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Positions in `ids` of the ids `wanted`, expected at `candidates`.

    The verdicts come in the order of the rows scored (a subsequence of the batch's rows), so
    the candidates are usually right: checked in one pass, and only looked up (a sort of every
    id of the batch's windows) when they are not.
    """
    if len(candidates) == len(wanted) and np.array_equal(ids[candidates], wanted):
        return candidates
    by_id = np.argsort(ids)
    return by_id[np.searchsorted(ids, wanted, sorter=by_id)]


def frame_of_inserts(values: list[dict[str, Any]]) -> pd.DataFrame:
    """New `transactions` rows from the binlog (column name -> value) as a transaction frame."""
    epoch = datetime(1970, 1, 1)
    data = {
        "transaction_id": [int(v["id"]) for v in values],
        "user_id": [int(v["user_id"]) for v in values],
        "terminal_id": [
            -1 if v.get("terminal_id") is None else int(v["terminal_id"]) for v in values
        ],
        "ts_us": [_us(v["occurred_at"], epoch) for v in values],
        "amount_units": [int(v["amount"].scaleb(4)) for v in values],
        "usd_units": [
            -1 if v.get("amount_usd") is None else int(v["amount_usd"].scaleb(4)) for v in values
        ],
    }
    # arrays of the frame's dtypes: `DataFrame.astype` per column cost ~7 µs per row
    columns: dict[str, Any] = {name: np.array(data[name], dtype=np.int64) for name in data}
    columns["currency"] = pd.Series(
        np.array([str(v["currency"]) for v in values], dtype=object), dtype=object, copy=False
    )
    return pd.DataFrame(columns)


def _us(moment: datetime, epoch: datetime) -> int:
    """A naive UTC DATETIME(6) value as microseconds since the epoch."""
    delta = moment.replace(tzinfo=None) - epoch
    return (delta.days * SECONDS_PER_DAY + delta.seconds) * US_PER_SECOND + delta.microseconds
