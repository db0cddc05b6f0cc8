"""Once a second, what the running scorer tells the outside: how far behind it is, its CPU by
stage and its connection, into its Prometheus metrics and its status file.

The lag is measured against the replica's executed GTIDs: in transactions (the GTIDs the
scorer has not reached) and in seconds (since the commit of the newest transaction it scored,
or since it started, while it is behind). The binlog follower's counters (events read,
reconnects, the decode thread's CPU) start again with each follower, so `follow` is called
whenever a new one starts and the published counters keep counting up.

Apart from `scorer` because it is reporting, not scoring: it reads the state and the position
but changes neither, and the loop only calls it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pymysql
import sqlalchemy as sa

from ledgerguard.db.dialect import Flavour, executed_gtids_query
from ledgerguard.realtime.binlog import BinlogFollower
from ledgerguard.realtime.metrics import ScorerMetrics
from ledgerguard.realtime.position import GtidPosition
from ledgerguard.realtime.stages import StageClock
from ledgerguard.realtime.state import OnlineState
from ledgerguard.realtime.status import ScorerStatus, write_status


class StatusReporter:
    """The scorer's metrics and status file, brought up to date by `measure`."""

    def __init__(
        self, metrics: ScorerMetrics, status: ScorerStatus, path: Path, clock: StageClock
    ) -> None:
        self.metrics, self.status, self._path, self._clock = metrics, status, path, clock
        self._started_at = time.time()
        #: commit time (epoch seconds) of the newest transaction scored (None: none yet)
        self.last_event_at: float | None = None
        self._events_seen = 0
        self._reconnects_before = 0
        self._cpu_published: dict[str, float] = {}

    def follow(self) -> None:
        """A new binlog follower starts: the counters read from it start again with it."""
        self._events_seen = 0
        self._cpu_published.pop("decode", None)
        self._reconnects_before = self.status.reconnects

    def publish_cpu(self, follower: BinlogFollower) -> None:
        """The stages' CPU since the last call, into `ledgerguard_scorer_cpu_seconds`."""
        seconds = self._clock.seconds
        seconds["decode"] = follower.cpu_seconds
        for stage, spent in seconds.items():
            delta = spent - self._cpu_published.get(stage, 0.0)
            if delta > 0:
                self.metrics.cpu_seconds.labels(stage).inc(delta)
                self._cpu_published[stage] = spent

    def measure(
        self,
        follower: BinlogFollower,
        state: OnlineState,
        position: GtidPosition,
        replica: Any,
        flavour: Flavour,
    ) -> None:
        """Publish the follower's counters and CPU, measure the lag against the replica's
        executed GTIDs (None while it cannot be reached), and write the status file."""
        metrics, status = self.metrics, self.status
        self.publish_cpu(follower)
        metrics.events_read.inc(follower.events_read - self._events_seen)
        self._events_seen = follower.events_read
        metrics.connected.set(1 if follower.connected else 0)
        reconnects = self._reconnects_before + follower.reconnects
        if reconnects > status.reconnects:
            metrics.reconnects.inc(reconnects - status.reconnects)
        status.reconnects = reconnects
        status.connected = follower.connected
        status.state = "running" if follower.connected else "waiting for the replica"
        status.last_error = follower.last_error
        status.position = position.text()
        status.users = state.users
        try:
            statement = executed_gtids_query(flavour)
            conn = replica.raw_connection()
            try:
                with conn.dbapi_connection.cursor() as cursor:
                    cursor.execute(statement.sql, statement.params)
                    executed = GtidPosition.parse(flavour, str(cursor.fetchone()[0] or ""))
            finally:
                conn.close()
            behind = position.behind(executed)
            status.lag_transactions = behind
            # the oldest unscored transaction committed after the last scored one
            since = self.last_event_at or self._started_at
            status.lag_seconds = 0.0 if behind == 0 else round(max(0.0, time.time() - since), 3)
        except (pymysql.err.Error, sa.exc.SQLAlchemyError) as exc:  # the replica is down
            status.lag_transactions = None
            status.lag_seconds = None
            status.last_error = str(exc)
        if status.lag_transactions is not None:
            metrics.lag_transactions.set(status.lag_transactions)
        if status.lag_seconds is not None:
            metrics.lag_seconds.set(status.lag_seconds)
        status.updated_at = datetime.now(UTC).isoformat()
        write_status(self._path, status)
