"""Is the replica fresh enough to analyse an interval? The rule every analytics job checks first.

The rule: **the replica must have applied every transaction the primary had committed when the
check started, and that moment must be at or after the end of the interval**. Checked by GTID:

1. as the API account on the primary (no extra privilege needed), read the primary's executed
   GTIDs and its clock (`UTC_TIMESTAMP()`);
2. if that clock is before `until`, the interval is not over yet (its data is not complete):
   refused, unless the caller explicitly allows an open interval (the demo analyses "today");
   an end less than `timeout` away (clock skew between the scheduler and the primary) is
   waited for instead;
3. as `app_user` on the replica, wait (bounded) with `MASTER_GTID_WAIT` /
   `WAIT_FOR_EXECUTED_GTID_SET` until the replica has applied that GTID position.

Why GTIDs and not `MAX(created_at)` or `Seconds_Behind_Master`: the newest row time says nothing
on a quiet night (no row after midnight is not lag), and `Seconds_Behind_Master` needs a
monitoring privilege and reads 0 while the SQL thread is stopped with a caught-up relay log. A
GTID position taken on the primary after the interval ended covers every commit of the interval,
whatever the traffic, and both accounts the analytics already use can read and wait for it.

Root is not needed. When the replica does not catch up in time, the local root account (socket
of `ledgerguard cluster`) is asked, best effort, for the replication threads' state, so the
error says *why* (SQL thread stopped, last error); a replica whose SQL thread stopped on an error
fails at once rather than after the whole timeout. On a deployment without local sockets
(Compose, remote servers) that diagnosis is simply skipped.

What the rule cannot see: a transaction committed after the check whose `occurred_at` falls in
the interval (a late import). Runs are idempotent, so rerunning the interval picks it up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pymysql
import sqlalchemy as sa

from ledgerguard.cluster.admin import run, scalar
from ledgerguard.cluster.errors import ClusterError, ReplicationError
from ledgerguard.db.dialect import (
    VERSION_QUERY,
    Flavour,
    ReplicaStatus,
    Statement,
    detect_flavour,
    executed_gtids_query,
    parse_replica_status,
    replica_status_query,
    wait_for_gtid,
)
from ledgerguard.db.engines import analytics_url, api_url, sync_engine
from ledgerguard.db.topology import acting_address
from ledgerguard.errors import LedgerGuardError
from ledgerguard.settings import Settings
from ledgerguard.utc import as_utc

_SERVER_CLOCK = Statement("SELECT UTC_TIMESTAMP(6)")
#: Newest row by primary key: instant on any table size (informational only, see module doc).
_NEWEST_ROW = Statement("SELECT created_at FROM transactions ORDER BY id DESC LIMIT 1")

#: Seconds between two looks at the replication threads while waiting.
_DIAGNOSE_EVERY = 5.0


class ReplicaUnavailable(ClusterError):
    """The primary or the replica cannot be reached with the application accounts."""


class ReplicaNotFresh(ReplicationError):
    """The replica has not applied everything the primary committed (lagging, stopped, broken)."""


class IntervalNotOver(ClusterError):
    """The interval ends after the primary's clock: its data cannot be complete yet."""


@dataclass(frozen=True)
class ReplicaFreshness:
    """Proof that the replica covers an interval; `to_dict()` is small enough for XCom."""

    until: datetime
    primary_clock: datetime
    primary_gtid: str
    replica_gtid: str
    waited_seconds: float
    newest_created_at: datetime | None
    interval_complete: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "until": self.until.isoformat(),
            "primary_clock": self.primary_clock.isoformat(),
            "primary_gtid": self.primary_gtid,
            "replica_gtid": self.replica_gtid,
            "waited_seconds": self.waited_seconds,
            "newest_created_at": (
                self.newest_created_at.isoformat() if self.newest_created_at else None
            ),
            "interval_complete": self.interval_complete,
        }


def _engine(url: sa.URL) -> sa.Engine:
    # autocommit: each MASTER_GTID_WAIT/variable read must see the server's current state
    return sync_engine(url, autocommit=True, connect_timeout=5)


def _value(conn: sa.Connection, statement: Statement) -> Any:
    return conn.exec_driver_sql(statement.sql, statement.params).scalar()


def _primary_position(settings: Settings) -> tuple[Flavour, str, datetime]:
    """(flavour, executed GTIDs, clock) of the primary, read as the API account."""
    engine = _engine(api_url(settings, driver="pymysql"))
    try:
        with engine.connect() as conn:
            flavour = detect_flavour(_value(conn, VERSION_QUERY) or "")
            gtid = _value(conn, executed_gtids_query(flavour)) or ""
            clock = as_utc(_value(conn, _SERVER_CLOCK), assume_utc=True)
    except sa.exc.OperationalError as exc:
        raise ReplicaUnavailable(
            f"cannot read the primary's GTID position at {settings.primary_host}:"
            f"{settings.primary_port} as {settings.api_db_user}: {exc.orig}; is the cluster up "
            "(`ledgerguard cluster status`)?"
        ) from exc
    finally:
        engine.dispose()
    return flavour, gtid.replace("\n", ""), clock


def replication_threads(settings: Settings) -> ReplicaStatus | None:
    """The replica's thread state seen by the monitoring account, or None if not reachable.

    The monitoring account (PROCESS, REPLICATION CLIENT, SLAVE MONITOR) is enough to read the
    threads' state, so DAG tasks never hold root's password. Best effort by design: any failure
    means "unknown", never an error of its own.
    """
    host, port = acting_address(settings, "replica")
    try:
        conn = pymysql.connect(
            host=host,
            port=port,
            user=settings.monitor_user,
            password=settings.monitor_password.get_secret_value(),
            connect_timeout=2,
            read_timeout=5,
            write_timeout=5,
            cursorclass=pymysql.cursors.DictCursor,
        )
        with conn:
            flavour = detect_flavour(scalar(conn, VERSION_QUERY) or "")
            rows = run(conn, replica_status_query(flavour))
    except (LedgerGuardError, pymysql.MySQLError, OSError):
        return None
    return parse_replica_status(flavour, rows[0] if rows else None)


def _describe(status: ReplicaStatus | None) -> str:
    if status is None:
        return "replication threads unknown (no local root access)"
    if not status.configured:
        return "the replica follows no primary"
    error = status.last_sql_error or status.last_io_error
    return f"IO thread running: {status.io_running}, SQL thread running: {status.sql_running}" + (
        f", last error: {error}" if error else ""
    )


def check_replica_fresh(
    settings: Settings,
    *,
    until: datetime,
    timeout: float,
    allow_open_interval: bool = False,
) -> ReplicaFreshness:
    """Wait at most `timeout` seconds until the replica covers everything before `until`.

    Returns a `ReplicaFreshness` on success. Raises `IntervalNotOver` when `until` is after the
    primary's clock (unless `allow_open_interval`), `ReplicaUnavailable` when a server cannot be
    reached, and `ReplicaNotFresh` (with the threads' state when known) when the replica has not
    applied the primary's position in time or its SQL thread stopped on an error.
    """
    if until.tzinfo is None:
        raise ValueError("until must be timezone-aware (UTC)")
    until = until.astimezone(UTC)
    began = time.monotonic()
    flavour, target, clock = _primary_position(settings)
    early = (until - clock).total_seconds()
    if 0 < early <= timeout and not allow_open_interval:
        # a scheduled run starting a moment before the primary's clock reaches the interval end
        # (clock skew between hosts) waits for it rather than failing
        time.sleep(early + 0.01)
        flavour, target, clock = _primary_position(settings)
    complete = clock >= until
    if not complete and not allow_open_interval:
        raise IntervalNotOver(
            f"the interval ends at {until.isoformat()} but the primary's clock is "
            f"{clock.isoformat()}: its transactions are not all written yet; run it after the "
            "interval has ended"
        )
    engine = _engine(analytics_url(settings))
    try:
        with engine.connect() as conn:
            reached = _wait(conn, settings, flavour, target, deadline=began + timeout)
            replica_gtid = (_value(conn, executed_gtids_query(flavour)) or "").replace("\n", "")
            newest = _value(conn, _NEWEST_ROW)
    except sa.exc.OperationalError as exc:
        raise ReplicaUnavailable(
            f"cannot query the replica at {settings.replica_host}:{settings.replica_port} as "
            f"{settings.replica_user}: {exc.orig}; is the cluster up (`ledgerguard cluster "
            "status`)?"
        ) from exc
    finally:
        engine.dispose()
    if not reached:
        raise ReplicaNotFresh(
            f"the replica has not applied the primary's GTID position {target!r} (taken at "
            f"{clock.isoformat()}, interval end {until.isoformat()}) within {timeout:g} s; it is "
            f"at {replica_gtid!r}; {_describe(replication_threads(settings))}. Analytics would "
            "read stale data: fix replication (`ledgerguard cluster status`, the replica's "
            "error.log), then rerun"
        )
    return ReplicaFreshness(
        until=until,
        primary_clock=clock,
        primary_gtid=target,
        replica_gtid=replica_gtid,
        waited_seconds=round(time.monotonic() - began, 3),
        newest_created_at=as_utc(newest, assume_utc=True) if newest else None,
        interval_complete=complete,
    )


def _wait(
    conn: sa.Connection, settings: Settings, flavour: Flavour, target: str, *, deadline: float
) -> bool:
    """Poll the replica's GTID wait in short steps; False on timeout or a broken SQL thread."""
    if not target:
        return True
    next_diagnosis = time.monotonic() + _DIAGNOSE_EVERY
    while True:
        remaining = deadline - time.monotonic()
        # a non-positive timeout means "wait forever" to MASTER_GTID_WAIT: keep it positive
        step = max(0.05, min(1.0, remaining))
        if _value(conn, wait_for_gtid(flavour, target, step)) == 0:
            return True
        if remaining <= 0:
            return False
        if time.monotonic() >= next_diagnosis:
            next_diagnosis = time.monotonic() + _DIAGNOSE_EVERY
            status = replication_threads(settings)
            # the IO thread retries on its own; a SQL thread stopped on an error needs a human
            if status is not None and status.last_sql_error and not status.sql_running:
                return False
