"""Online state of the streaming scorer, scored by the fraud engine's own `score_frame`.

One implementation of the rules: a micro-batch of new transactions is turned into the same
*transaction frame* the nightly pipeline builds from a replica page (the new rows plus the
windows of their users), and `fraud.engine.scoring.score_frame` scores it with the same
`FraudParameters` and, when configured, the same trained model.

What `OnlineState` keeps in memory: the **user windows** — every transaction of the
partition's users (`partition.Partition`: `user_id % N == K`) within `params.lookback_days`
plus the revision window (`revision.kept_us`) of the user's newest one, as one small NumPy
record array per user (`rows.ROW_DTYPE`, ~60 bytes a transaction), with the last verdict the
scorer gave it and the terminal history it was scored with. Older rows are dropped as new ones
arrive, users idle longer than the lookback are dropped by `sweep`. The terminal history it
scores with comes from the **terminal counts** of every user (`terminal_counts.TerminalCounts`),
which it updates as transactions and labels stream in.

Revisions: the nightly engine marks *every* member of a card-testing burst or structuring group,
including the first ones, scored before the group was complete. The stream does the same by
re-scoring the recent rows of each batch's users (the revision window, `revision.revision_us`) and
writing again those whose flag changed, so after the burst completes both scorers hold the same
flags. Those rows' windows are complete (the rows are kept `lookback_days` further back), so
their verdicts are the nightly run's — before, a revised row's 30-day windows lost their oldest
rows as the user's newest moved on and its verdict could differ — and a row's features change
only with the events `OnlineState._may_change` looks for: a batch re-scores those rows and its
new ones only, with the verdicts of re-scoring the whole revision window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ledgerguard.fraud.engine.customer_features import group_spans
from ledgerguard.fraud.engine.fx import fill_missing_usd
from ledgerguard.fraud.engine.scoring import score_frame
from ledgerguard.fraud.engine.windows import SECONDS_PER_DAY, US_PER_SECOND, TimeAxis
from ledgerguard.money import FxRates
from ledgerguard.realtime.partition import Partition
from ledgerguard.realtime.revision import kept_us, revision_us
from ledgerguard.realtime.rows import (
    Merged,
    concatenate,
    frame_from_rows,
    rows_from_frame,
    user_time_id_order,
)
from ledgerguard.realtime.stages import StageClock
from ledgerguard.realtime.terminal_counts import TerminalCounts
from ledgerguard.settings.fraud import FraudParameters

if TYPE_CHECKING:
    from ledgerguard.fraud.engine.model import FraudModel

_US_PER_DAY = SECONDS_PER_DAY * US_PER_SECOND
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
        combined = concatenate([*known, rows]) if known else rows
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
        order = user_time_id_order(combined, batch_users)
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
