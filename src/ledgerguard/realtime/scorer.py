"""The streaming scorer's loop: binlog -> micro-batch -> engine -> verdicts + checkpoint.

`Scorer.run` (what `ledgerguard scorer` runs):

1. checks the replica writes column names into row events (`binlog_row_metadata=FULL`);
2. rebuilds the partition's state from one replica snapshot (`snapshot.rebuild_state`) and
   reads its checkpoint on the primary; no checkpoint (first start): it starts at the snapshot,
   older transactions being the nightly run's. With a checkpoint it also reads the flagged
   verdicts it wrote for the rows a batch may still revise (`checkpoint.read_flagged`), so a
   restart does not write them all again;
3. follows the replica's binlog from the checkpoint (`binlog.BinlogFollower`), collecting the
   transactions that arrive within `scorer_batch_ms` into one batch;
4. per batch: labels update terminal fraud counts, new transactions update terminal counts and
   are scored with their users' windows (`state.OnlineState.score`), and the verdicts, new
   alerts and the batch's last GTID are committed in one transaction (`checkpoint.commit_batch`).

Transactions between the checkpoint and the snapshot (a restart after a crash) are scored again
(the same verdicts, upserted) but not added to the state twice: the snapshot already held them.
The lag (in transactions and seconds) is measured against the replica's executed GTIDs once a
second and published as metrics and in the status file (`reporter`, `status`). The replica's
flavour and row-metadata check come from `replica`.
"""

from __future__ import annotations

import gc
import logging
import queue
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from ledgerguard.db.dialect import Flavour
from ledgerguard.db.engines import analytics_engine, writer_engine
from ledgerguard.db.parameter_sets import active_set
from ledgerguard.fraud.errors import FraudAnalysisError
from ledgerguard.fraud.parameter_sets import active_parameters
from ledgerguard.fraud.pipeline import model_of
from ledgerguard.money import FxRates
from ledgerguard.realtime.alerts import AlertDelivery
from ledgerguard.realtime.batch import changes_of
from ledgerguard.realtime.binlog import BinlogFollower, BinlogTransaction
from ledgerguard.realtime.checkpoint import (
    Checkpoint,
    commit_batch,
    read_checkpoint,
    read_flagged,
)
from ledgerguard.realtime.errors import ScorerError
from ledgerguard.realtime.metrics import ScorerMetrics
from ledgerguard.realtime.partition import Partition
from ledgerguard.realtime.position import GtidPosition
from ledgerguard.realtime.replica import replica_connection, replica_flavour
from ledgerguard.realtime.reporter import StatusReporter
from ledgerguard.realtime.rows import frame_of_inserts
from ledgerguard.realtime.snapshot import committed_since, labelled_transactions, rebuild_state
from ledgerguard.realtime.stages import StageClock
from ledgerguard.realtime.state import OnlineState
from ledgerguard.realtime.status import ScorerStatus, status_file
from ledgerguard.settings import Settings

log = logging.getLogger(__name__)

#: Largest batch, whatever the time window (bounds one transaction on the primary).
MAX_BATCH_TRANSACTIONS = 5_000
#: An idle stream still moves its checkpoint this often (heartbeat transactions).
IDLE_CHECKPOINT_SECONDS = 5.0
#: Binlog client server ids: this + partition index (unique among the replica's clients).
SERVER_ID_BASE = 4_000
#: How often the running scorer looks for a newly approved parameter set (one primary query).
PARAMETER_CHECK_SECONDS = 10.0


def freeze_heap() -> None:
    """Take what start-up made (modules, pools, the rebuilt state) out of the cyclic GC's sight.

    Scoring allocates many short-lived containers, so the collector runs often, and each of
    its full passes walked every long-lived object again; frozen objects are skipped (they
    are still freed by reference counting). Called once the state is rebuilt.
    """
    gc.collect()
    gc.freeze()


class Scorer:
    def __init__(
        self,
        settings: Settings,
        *,
        partition: Partition = Partition(),
        metrics: ScorerMetrics | None = None,
        checkpoint_name: str | None = None,
    ) -> None:
        self.settings = settings
        #: the settings before the approved parameter set is applied (a new set replaces it)
        self._base_settings = settings
        self.partition = partition
        #: the checkpoint row it writes (the partition's; `bench scorer-cpu` uses its own)
        self.checkpoint_name = checkpoint_name or partition.name
        self.metrics = metrics or ScorerMetrics()
        self.status = ScorerStatus(partition=partition.name)
        #: CPU seconds of the scoring thread by stage (`decode` is the binlog thread's)
        self.clock = StageClock()
        #: lag, CPU and connection, once a second, into the metrics and the status file
        self.reporter = StatusReporter(
            self.metrics, self.status, status_file(settings, partition), self.clock
        )

    # --- start-up ---------------------------------------------------------------------------
    def run(self, stop: threading.Event, *, rebuild: bool = False) -> None:
        """Score until `stop` is set; raises `ScorerError` for what a restart cannot fix.

        `rebuild` (after `CheckpointPurged`): the transactions created since the checkpoint's
        last event (by time, from the replica's table) are scored first, and the stream starts
        at the replica snapshot instead of the checkpoint.

        A parameter set approved in the web app while the scorer runs takes effect within
        `PARAMETER_CHECK_SECONDS`: the scorer starts again in-process from its checkpoint, state
        rebuilt with the new values (a window length may have changed), exactly as after a
        restart — so no transaction is missed or scored twice, and every verdict of a batch was
        scored with one parameter set.
        """
        while not self._run_once(stop, rebuild=rebuild) and not stop.is_set():
            rebuild = False

    def _run_once(self, stop: threading.Event, *, rebuild: bool) -> bool:
        """One start: True when `stop` ended it, False when a new parameter set did."""
        # the parameters in force (settings + the approved set of the web app)
        try:
            active = active_parameters(self._base_settings)
        except FraudAnalysisError as exc:
            raise ScorerError(str(exc)) from None
        self.settings = settings = active.settings(self._base_settings)
        self.status.parameter_set = active.version
        flavour = replica_flavour(settings)
        writer = writer_engine(settings, keep_open=True)
        delivery_stop = threading.Event()
        delivery_thread = None
        try:
            checkpoint = read_checkpoint(writer, self.partition.name)
            fx = FxRates()
            state, snapshot = rebuild_state(
                settings,
                flavour=flavour,
                partition=self.partition,
                fx=fx,
                model=model_of(settings.fraud),
            )
            if checkpoint is not None:
                # what the previous process flagged, so it is not written again (a restart)
                state.recall_flagged(*read_flagged(writer, state.revision_ids()))
            if rebuild and checkpoint is not None:
                self._rebuild(state, snapshot, checkpoint, writer)
                checkpoint = None
            freeze_heap()
            start = (
                snapshot if checkpoint is None else GtidPosition.parse(flavour, checkpoint.gtid_pos)
            )
            log.info(
                "partition %s: %d users, %d transactions in memory; streaming from %r; "
                "parameter set %s",
                self.partition.name,
                state.users,
                state.transactions,
                start.text(),
                active.version or "none (settings)",
            )
            if settings.alert_webhook_url is not None:
                delivery = AlertDelivery(settings, writer, self.metrics)
                delivery_thread = threading.Thread(
                    target=delivery.run, args=(delivery_stop,), name="alert-delivery", daemon=True
                )
                delivery_thread.start()
            follower = BinlogFollower(
                settings,
                flavour=flavour,
                position=start,
                server_id=SERVER_ID_BASE + self.partition.index,
            )
            self.reporter.follow()
            follower.start()
            try:
                return self._loop(stop, follower, state, start.copy(), snapshot, writer, flavour)
            finally:
                follower.stop()
        finally:
            delivery_stop.set()
            if delivery_thread is not None:
                delivery_thread.join(timeout=10)
            writer.dispose()

    def _rebuild(
        self, state: OnlineState, snapshot: GtidPosition, checkpoint: Checkpoint, writer: Any
    ) -> None:
        """Score what the purged binlog no longer covers, from the replica, by commit time."""
        since = (checkpoint.event_at or checkpoint.updated_at) - timedelta(seconds=1)
        conn = replica_connection(self.settings)
        try:
            frame = committed_since(conn, since, self.partition)
        finally:
            conn.close()
        scored = state.score(frame) if len(frame) else None
        commit_batch(
            writer,
            verdicts=scored.rows if scored is not None else pd.DataFrame(),
            partition_name=self.partition.name,
            gtid_pos=snapshot.text(),
            event_at=datetime.now(UTC),
            scored=scored.new if scored is not None else 0,
            alerts=self.settings.alert_webhook_url is not None,
        )
        log.info(
            "rebuild: scored %d transactions created since %s; streaming from %r",
            len(frame),
            since.isoformat(),
            snapshot.text(),
        )

    # --- the loop -------------------------------------------------------------------------------
    def _loop(
        self,
        stop: threading.Event,
        follower: BinlogFollower,
        state: OnlineState,
        position: GtidPosition,
        snapshot: GtidPosition,
        writer: Any,
        flavour: Flavour,
    ) -> bool:
        """Batches until `stop` (True) or a newly approved parameter set (False)."""
        replica = analytics_engine(self.settings, keep_open=True)
        last_commit = time.monotonic()
        last_lag = 0.0
        last_parameter_check = time.monotonic()
        last_sweep = time.monotonic()
        pending_position = False
        event_at: datetime | None = None
        self.status.state = "running"
        try:
            while not stop.is_set():
                batch = self._collect(follower, stop)
                if batch:
                    for transaction in batch:
                        position.advance(transaction.gtid)
                    event_at = datetime.fromtimestamp(batch[-1].committed_at, UTC)
                    self.reporter.last_event_at = batch[-1].committed_at
                    pending_position = True
                    scored = self.score_batch(
                        batch, state, snapshot, replica, writer, position, event_at
                    )
                    if scored is not None:
                        last_commit, pending_position = time.monotonic(), False
                now = time.monotonic()
                if pending_position and now - last_commit > IDLE_CHECKPOINT_SECONDS:
                    commit_batch(
                        writer,
                        verdicts=pd.DataFrame(),
                        partition_name=self.partition.name,
                        gtid_pos=position.text(),
                        event_at=event_at,
                        scored=0,
                        alerts=False,
                    )
                    last_commit, pending_position = now, False
                if now - last_lag >= 1.0:
                    self.reporter.measure(follower, state, position, replica, flavour)
                    last_lag = now
                if now - last_sweep >= 60:
                    state.sweep()
                    last_sweep = now
                if now - last_parameter_check >= PARAMETER_CHECK_SECONDS:
                    last_parameter_check = now
                    if self._new_parameter_set(writer):
                        return False
            return True
        finally:
            replica.dispose()

    def _new_parameter_set(self, writer: Any) -> bool:
        """Whether another set than the one scored with is approved now (a failed read: no)."""
        try:
            with writer.connect() as conn:
                active = active_set(conn)
        except sa.exc.SQLAlchemyError as exc:
            log.warning("cannot read the active parameter set: %s", exc)
            return False
        version = None if active is None else active.id
        if version == self.status.parameter_set:
            return False
        log.info(
            "parameter set %s approved (scoring with %s): starting again from the checkpoint",
            version,
            self.status.parameter_set or "the settings",
        )
        return True

    def _collect(self, follower: BinlogFollower, stop: threading.Event) -> list[BinlogTransaction]:
        """The transactions that arrive within one batch window (none after a quiet second)."""
        batch: list[BinlogTransaction] = []
        window = self.settings.scorer_batch_ms / 1000
        try:
            item = follower.queue.get(timeout=0.5)
        except queue.Empty:
            return batch
        deadline = time.monotonic() + window
        while True:
            if isinstance(item, BaseException):
                raise item
            batch.append(item)
            if len(batch) >= MAX_BATCH_TRANSACTIONS or stop.is_set():
                return batch
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return batch
            try:
                item = follower.queue.get(timeout=remaining)
            except queue.Empty:
                return batch

    def score_batch(
        self,
        batch: list[BinlogTransaction],
        state: OnlineState,
        snapshot: GtidPosition,
        replica: Any,
        writer: Any,
        position: GtidPosition,
        event_at: datetime,
    ) -> int | None:
        """Score one batch and commit it with the checkpoint; None when it held nothing.

        Each stage's CPU is charged to `self.clock` (see `realtime.stages`).
        """
        clock = self.clock
        with clock.stage("parse"):
            fresh, replayed, labels = changes_of(batch, snapshot)
            if not (fresh or replayed or labels):
                return None
            fresh_frame = frame_of_inserts(fresh) if fresh else None
            replayed_frame = frame_of_inserts(replayed) if replayed else None
        if labels:
            with clock.stage("labels"):
                conn = replica.raw_connection()
                try:
                    found = labelled_transactions(conn.dbapi_connection, list(labels))
                finally:
                    conn.close()
                for tx_id, (terminal_id, user_id, ts_us) in found.items():
                    state.count_fraud(terminal_id, ts_us, labels[tx_id], user_id=user_id)
        parts = []
        created: list[datetime] = []
        if fresh_frame is not None:
            with clock.stage("state"):
                state.count_transactions(fresh_frame)
            parts.append(state.score(fresh_frame, clock=clock))
            owned = state.partition.owns(fresh_frame["user_id"].to_numpy()).tolist()
            created += [v["created_at"] for v, own in zip(fresh, owned, strict=True) if own]
        if replayed_frame is not None:
            parts.append(state.score(replayed_frame, clock=clock))
        with clock.stage("verdicts"):
            verdicts = (
                pd.concat([p.rows for p in parts if len(p.rows)], ignore_index=True)
                if any(len(p.rows) for p in parts)
                else pd.DataFrame()
            )
            scored = sum(p.new for p in parts)
            # verdicts that may replace one already stored: revisions, and every verdict of a
            # transaction streamed again after a restart (its verdict may have been written)
            replacing = [p.revised_ids for p in parts]
            if replayed_frame is not None:
                replacing.append(replayed_frame["transaction_id"].to_numpy())
        commit_batch(
            writer,
            verdicts=verdicts,
            replacing=np.concatenate(replacing) if replacing else None,
            partition_name=self.checkpoint_name,
            gtid_pos=position.text(),
            event_at=event_at,
            scored=scored,
            alerts=self.settings.alert_webhook_url is not None,
            clock=clock,
        )
        done = datetime.now(UTC)
        metrics = self.metrics
        metrics.scored.inc(scored)
        revised = sum(p.revised for p in parts)
        metrics.revised.inc(revised)
        self.status.revised += revised
        if len(verdicts):
            metrics.flagged.inc(int(verdicts["flagged"].sum()))
        for moment in created:
            metrics.latency.observe(max(0.0, (done - moment.replace(tzinfo=UTC)).total_seconds()))
        self.status.scored += scored
        return scored
