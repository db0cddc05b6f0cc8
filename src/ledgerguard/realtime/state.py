"""Online state of the streaming scorer, scored by the fraud engine's own `score_frame`.

One implementation of the rules: a micro-batch of new transactions is turned into the same
*transaction frame* the nightly pipeline builds from a replica page (the new rows plus the
windows of their users), and `fraud.engine.scoring.score_frame` scores it with the same
`FraudParameters` and, when configured, the same trained model.

What is kept in memory:

* **User windows** — every transaction of the partition's users (`user_id % N == K`) within
  `params.lookback_days` of the user's newest one, as one small NumPy record array per user
  (~50 bytes a transaction), with the last verdict the scorer gave it. Older rows are dropped as
  new ones arrive, users idle longer than the lookback are dropped by `sweep`.
* **Terminal counts** — transactions and confirmed frauds per (terminal, day) of *every* user
  (terminals are shared across partitions), as `TerminalHistory` expects. `terminal_risk` of a
  transaction on day D reads days before D - `label_delay_days`, so the counts of today never
  matter today: the history object is rebuilt only when a count that a batch can see has changed
  (a label arrived, a back-dated transaction, or the day rolled over).

Revisions: the nightly engine marks *every* member of a card-testing burst or structuring group,
including the first ones, scored before the group was complete. The stream does the same by
re-scoring the recent rows of each batch's users (within the velocity and structuring windows)
and writing again those whose verdict changed, so after the burst completes both scorers hold the
same flags.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ledgerguard.fraud.engine.features import (
    SECONDS_PER_DAY,
    TX_DTYPES,
    US_PER_SECOND,
    TerminalHistory,
    add_profiles,
    order_by,
    with_profile,
)
from ledgerguard.fraud.engine.fx import fill_missing_usd
from ledgerguard.fraud.engine.scoring import score_frame
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
    ]
)
_US_PER_DAY = SECONDS_PER_DAY * US_PER_SECOND


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


#: `profile_of(first_day, stop_day)`: the terminal profile (`features.terminal_profile_days`
#: over every user) of days [first_day, stop_day), read from the replica.
ProfileLoader = Callable[[int, int], pd.DataFrame]


class TerminalCounts:
    """(terminal, day) -> transactions, confirmed frauds; `history()` for the engine.

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
        profile: pd.DataFrame | None = None,
        profile_through: int | None = None,
        profile_of: ProfileLoader | None = None,
    ) -> None:
        self._params = params
        self._base = days[["terminal_id", "day", "n_tx", "n_fraud"]].copy()
        self._delta: dict[tuple[int, int], list[int]] = {}
        self._changed_from_day: int | None = None  # earliest day changed since the last build
        self._profile = profile
        self._profile_through = profile_through  # last day whose profile is complete
        self._profile_of = profile_of
        self._history = self._build()
        self.rebuilds = 0

    @classmethod
    def empty(cls, params: FraudParameters) -> TerminalCounts:
        return cls(pd.DataFrame({"terminal_id": [], "day": [], "n_tx": [], "n_fraud": []}), params)

    def add(self, terminal_id: int, day: int, *, n_tx: int = 0, n_fraud: int = 0) -> None:
        counts = self._delta.setdefault((terminal_id, day), [0, 0])
        counts[0] += n_tx
        counts[1] += n_fraud
        if self._changed_from_day is None or day < self._changed_from_day:
            self._changed_from_day = day

    def history(self, *, newest_day: int) -> TerminalHistory:
        """The history, rebuilt first if a change is visible to a transaction of `newest_day`."""
        changed = self._changed_from_day
        stale_profile = self._profile_through is not None and self._profile_through < newest_day - 1
        if stale_profile or (
            changed is not None and changed < newest_day - self._params.label_delay_days
        ):
            self._rebuild(newest_day)
        return self._history

    def _build(self) -> TerminalHistory:
        if self._profile is None:
            return TerminalHistory(self._base)
        return TerminalHistory(with_profile(self._base, self._profile))

    def _rebuild(self, newest_day: int) -> None:
        delta = pd.DataFrame(
            [(t, d, c[0], c[1]) for (t, d), c in self._delta.items()],
            columns=["terminal_id", "day", "n_tx", "n_fraud"],
        )
        merged = pd.concat([self._base, delta], ignore_index=True)
        merged = merged.groupby(["terminal_id", "day"], as_index=False)[["n_tx", "n_fraud"]].sum()
        oldest = (
            newest_day - self._params.label_delay_days - max(self._params.terminal_feature_windows)
        )
        self._base = merged[merged["day"] >= oldest].reset_index(drop=True)
        self._delta.clear()
        self._changed_from_day = None
        if self._profile is not None and self._profile_through is not None:
            if self._profile_of is not None and self._profile_through < newest_day - 1:
                fresh = self._profile_of(self._profile_through + 1, newest_day)
                self._profile = add_profiles([self._profile, fresh])
                self._profile_through = newest_day - 1
            first = newest_day - self._params.terminal_profile_days
            self._profile = self._profile[self._profile["day"] >= first].reset_index(drop=True)
        self._history = self._build()
        self.rebuilds += 1


_NO_IDS = np.empty(0, dtype=np.int64)


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


class OnlineState:
    """User windows and terminal counts of one partition; `score` runs the engine on a batch."""

    def __init__(
        self,
        params: FraudParameters,
        *,
        partition: Partition,
        terminals: TerminalCounts,
        fx: FxRates,
        model: FraudModel | None = None,
    ) -> None:
        self.params = params
        self.partition = partition
        self.terminals = terminals
        self._fx = fx
        self._model = model
        self._users: dict[int, np.ndarray] = {}
        self._lookback_us = int(params.lookback_days * _US_PER_DAY)
        self._revise_us = int(
            max(params.velocity_window_minutes * 60, params.structuring_window_hours * 3600)
            * US_PER_SECOND
        )
        self.newest_us = 0
        #: flagged verdicts a previous process wrote (`recall_flagged`): sorted ids, scores
        self._recalled: tuple[np.ndarray, np.ndarray] | None = None
        self._recalled_until_us = 0

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
            self._store(*self._merge(rows))

    def _merge(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The windows of the users of `rows` with `rows` added, and which rows stay kept.

        One NumPy pass per batch, whatever its number of users: their kept rows and the new
        ones concatenated, ids already kept not added twice (the kept row wins: it carries the
        last verdict), sorted by (user, time, id); a row is kept while it is within the lookback
        of its user's newest one. Nothing is stored yet (`_store`), so a batch that fails to
        score leaves the state as it was.
        """
        self.newest_us = max(self.newest_us, int(rows["ts_us"].max()))
        users = self._users
        batch_users = np.unique(rows["user_id"])
        known = [users[u] for u in batch_users.tolist() if u in users]
        combined = _concatenate([*known, rows]) if known else rows
        ids = combined["transaction_id"]
        sorted_ids = np.sort(ids)
        if (sorted_ids[1:] == sorted_ids[:-1]).any():  # a replayed row (rare): drop it
            _, first = np.unique(ids, return_index=True)
            combined = combined[np.sort(first)]
        combined = combined[_user_time_id_order(combined, batch_users)]
        user = combined["user_id"]
        starts = np.flatnonzero(np.r_[True, user[1:] != user[:-1]])
        newest = np.maximum.reduceat(combined["ts_us"], starts)
        sizes = np.diff(np.r_[starts, len(combined)])
        keep = combined["ts_us"] >= np.repeat(newest - self._lookback_us, sizes)
        return combined, keep

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
        """Drop users idle for longer than the lookback (their windows are empty); how many."""
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

    def count_fraud(self, terminal_id: int, ts_us: int, change: int) -> None:
        """A confirmed fraud label appeared (+1) or went away (-1) on a terminal's day."""
        self.terminals.add(terminal_id, ts_us // _US_PER_DAY, n_fraud=change)

    def score(self, frame: pd.DataFrame, *, clock: StageClock | None = None) -> BatchVerdicts:
        """Verdicts of the partition's transactions in `frame`, plus revisions.

        Rows the state already holds (streamed again after a restart: the start-up snapshot
        had them) are not added twice. A row older than its user's window (a back-dated
        import) is scored with that window but not kept.
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
            combined, keep = self._merge(rows_from_frame(frame))
            self._recall(combined)
            # kept rows, plus new ones older than their user's window (a back-dated import):
            # scored with that window, not kept
            scored_rows = keep.copy()
            if not keep.all():  # (a sort of every id only when some row is not kept)
                dropped = ~keep
                scored_rows[dropped] = np.isin(combined["transaction_id"][dropped], new_ids)
            scored = combined[scored_rows]
            newest_day = int(scored["ts_us"].max()) // _US_PER_DAY
            start_us = int(frame["ts_us"].min()) - self._revise_us
            end_us = int(scored["ts_us"].max()) + 1
            # where the verdicts (rows of [start, end), in this order) are in `combined`
            ts = combined["ts_us"]
            inside = np.flatnonzero(scored_rows & (ts >= start_us) & (ts < end_us))
            history = self.terminals.history(newest_day=newest_day)
        counts: list[int] = []
        revised_ids: list[np.ndarray] = []

        def select(scores: pd.DataFrame) -> np.ndarray:
            write, new, revised = self._compare(scores, combined, new_ids, inside)
            counts.append(new)
            revised_ids.append(revised)
            return write

        with clock.stage("score"):
            rows = score_frame(
                frame_from_rows(scored),
                history,
                self.params,
                start=_moment(start_us),
                end=_moment(end_us),
                store_all=True,
                model=self._model,
                select=select,
            ).rows
        with clock.stage("state"):
            self._store(combined, keep)
            return BatchVerdicts(
                rows,
                new=counts[0],
                revised_ids=np.concatenate(revised_ids) if revised_ids else _NO_IDS,
            )

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


def _moment(ts_us: int) -> datetime:
    seconds, micros = divmod(ts_us, US_PER_SECOND)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=micros)


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
