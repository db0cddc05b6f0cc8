"""Operations on a replica through a root connection, shared by the local and Compose paths."""

from __future__ import annotations

import time
from collections.abc import Callable

import pymysql

from ledgerguard.cluster.admin import run, scalar
from ledgerguard.cluster.errors import ReplicationError
from ledgerguard.cluster.replication import (
    point_replica_at,
    start_after_own_history,
    start_replica,
    stop_replica,
)
from ledgerguard.db.dialect import (
    VERSION_QUERY,
    Flavour,
    ReplicaStatus,
    detect_flavour,
    executed_gtids_query,
    parse_replica_status,
    replica_status_query,
    wait_for_gtid,
)
from ledgerguard.settings import Settings

Connection = pymysql.connections.Connection


def flavour_of(conn: Connection) -> Flavour:
    return detect_flavour(scalar(conn, VERSION_QUERY) or "")


def replica_status(conn: Connection, flavour: Flavour) -> ReplicaStatus:
    rows = run(conn, replica_status_query(flavour))
    return parse_replica_status(flavour, rows[0] if rows else None)


def executed_gtids(conn: Connection) -> str:
    return scalar(conn, executed_gtids_query(flavour_of(conn))) or ""


def follow_primary(
    conn: Connection,
    settings: Settings,
    *,
    primary_host: str,
    primary_port: int,
    progress: Callable[[str], None],
) -> None:
    """Point the replica at the primary by GTID if it follows nobody; (re)start its threads.

    An IO thread that is retrying (e.g. the primary was restarted) is restarted at once rather
    than left waiting for its next retry.
    """
    flavour = flavour_of(conn)
    status = replica_status(conn, flavour)
    if not status.configured:
        start_after = start_after_own_history(flavour)
        if start_after is not None:
            run(conn, start_after)
        run(
            conn,
            point_replica_at(
                flavour,
                host=primary_host,
                port=primary_port,
                user=settings.repl_user,
                password=settings.repl_password.get_secret_value(),
                connect_retry=1,
            ),
        )
        progress(f"replica follows {primary_host}:{primary_port} by GTID ({flavour})")
    elif not status.io_running:
        run(conn, stop_replica(flavour))
    run(conn, start_replica(flavour))


def wait_until_applied(conn: Connection, target: str, *, timeout: float) -> None:
    """Block until the replica behind `conn` has applied GTID set `target`.

    The IO thread retries by itself, so connection errors are waited out until `timeout`; a
    stopped SQL thread with an error needs a human and fails at once. Raises `ReplicationError`
    with the replica's last error.
    """
    if not target:
        return
    flavour = flavour_of(conn)
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        # MASTER_GTID_WAIT with a negative timeout waits forever: keep it positive
        step = max(0.05, min(1.0, remaining))
        if scalar(conn, wait_for_gtid(flavour, target, step)) == 0:
            return
        status = replica_status(conn, flavour)
        if remaining <= 0 or (status.last_sql_error and not status.sql_running):
            error = status.last_sql_error or status.last_io_error
            raise ReplicationError(
                f"the replica has not reached the primary's GTID {target!r} "
                f"(IO running: {status.io_running}, SQL running: {status.sql_running}"
                f"{', last error: ' + error if error else ''}); "
                "check `ledgerguard cluster status` and the replica's error log"
            )
