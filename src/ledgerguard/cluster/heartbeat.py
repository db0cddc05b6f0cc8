"""The replication heartbeat: a timestamp written on the primary every second.

Why: `Seconds_Behind_Master` only measures how old the event the SQL thread is applying is; it
reads 0 when the IO thread is broken or the replica has simply heard nothing, so it hides the
worst outages. A row the primary rewrites every second, read on the replica, measures what
readers actually see: "the newest data here is N seconds old".

Design (compatible with Percona's `pt-heartbeat`, so its tools and mysqld-exporter's
`--collect.heartbeat` read it):

* database `heartbeat`, table `heartbeat.heartbeat (ts VARCHAR(26), server_id INT UNSIGNED
  PRIMARY KEY, file, position, relay_master_log_file, exec_master_log_pos)`, `ts` in UTC as
  `YYYY-MM-DDTHH:MM:SS.ffffff`; one row per writing server;
* a server EVENT `heartbeat.heartbeat_writer` on the primary upserts its row every second. It needs
  the event scheduler (`event_scheduler = ON` in the primary's my.cnf). Events reach the replica
  through the binlog *disabled* (`SLAVESIDE_DISABLED`), so the replica never writes a row of its
  own; after a failover, `enable_heartbeat_writer` on the new primary turns its copy on;
* mysqld-exporter on each server exports `mysql_heartbeat_now_timestamp_seconds` and
  `mysql_heartbeat_stored_timestamp_seconds` (with `--collect.heartbeat.utc`), and the recording
  rule `ledgerguard:mysql_replication_lag_seconds` takes the freshest row's age on the replica.

It lives with the cluster because `cluster up` and the failover install and switch on the writer;
the monitoring stack only reads its age (`heartbeat_age`).

Everything is created as root on the primary with the binlog on, so it replicates; all statements
are idempotent and run on every `cluster up`.
"""

from __future__ import annotations

import pymysql

from ledgerguard.cluster.admin import run, scalar
from ledgerguard.cluster.errors import HeartbeatError
from ledgerguard.db.dialect import Statement

DATABASE = "heartbeat"
TABLE = "heartbeat"
EVENT = "heartbeat_writer"
_NO_SUCH_TABLE = 1146

#: The writer's statement, shared by CREATE and ALTER so the two never drift apart. `%%` because
#: `ledgerguard.cluster.admin.run` always interpolates parameters.
_WRITE_ROW = (
    f"INSERT INTO `{DATABASE}`.`{TABLE}` (ts, server_id) "
    "VALUES (DATE_FORMAT(UTC_TIMESTAMP(6), '%%Y-%%m-%%dT%%H:%%i:%%s.%%f'), @@GLOBAL.server_id) "
    "ON DUPLICATE KEY UPDATE ts = VALUES(ts)"
)

CREATE_DATABASE = Statement(f"CREATE DATABASE IF NOT EXISTS `{DATABASE}`")
CREATE_TABLE = Statement(
    f"CREATE TABLE IF NOT EXISTS `{DATABASE}`.`{TABLE}` ("
    "ts VARCHAR(26) NOT NULL, "
    "server_id INT UNSIGNED NOT NULL PRIMARY KEY, "
    "file VARCHAR(255) DEFAULT NULL, "
    "position BIGINT UNSIGNED DEFAULT NULL, "
    "relay_master_log_file VARCHAR(255) DEFAULT NULL, "
    "exec_master_log_pos BIGINT UNSIGNED DEFAULT NULL"
    ") ENGINE=InnoDB"
)
CREATE_EVENT = Statement(
    f"CREATE EVENT IF NOT EXISTS `{DATABASE}`.`{EVENT}` ON SCHEDULE EVERY 1 SECOND "
    f"ON COMPLETION PRESERVE ENABLE COMMENT 'ledgerguard replication heartbeat' DO {_WRITE_ROW}"
)
#: Re-applies the current definition to an existing event and (re-)enables it.
ALTER_EVENT = Statement(
    f"ALTER EVENT `{DATABASE}`.`{EVENT}` ON SCHEDULE EVERY 1 SECOND "
    f"ON COMPLETION PRESERVE ENABLE DO {_WRITE_ROW}"
)
EVENT_SCHEDULER = Statement("SELECT @@GLOBAL.event_scheduler")
START_EVENT_SCHEDULER = Statement("SET GLOBAL event_scheduler = ON")
#: Age in seconds of the freshest heartbeat row, as this server sees it (the replica: its lag).
HEARTBEAT_AGE = Statement(
    f"SELECT UNIX_TIMESTAMP(UTC_TIMESTAMP(6)) - MAX(UNIX_TIMESTAMP(ts)) FROM `{DATABASE}`.`{TABLE}`"
)


def install_heartbeat(conn: pymysql.connections.Connection) -> None:
    """Create the heartbeat database, table and writer event on the primary, idempotently.

    `conn` must be a root connection to the **primary** with the binlog on (the default session),
    so the objects replicate. The event scheduler is switched on for the running server when it
    is merely OFF, so the heartbeat starts at once; keeping it on across restarts is the job of
    `event_scheduler = ON` in the primary's my.cnf. A server started with the scheduler
    `DISABLED` cannot be switched at runtime: that raises `HeartbeatError`.
    """
    for statement in (CREATE_DATABASE, CREATE_TABLE, CREATE_EVENT):
        run(conn, statement)
    enable_heartbeat_writer(conn)


def enable_heartbeat_writer(conn: pymysql.connections.Connection) -> None:
    """Make this server (a primary, possibly a freshly promoted one) write the heartbeat.

    A replica holds the event replicated as `SLAVESIDE_DISABLED`; after promotion the failover
    calls this on the new primary. Never call it on a server that still replicates: two writers
    would each keep their own row fresh and hide the lag.
    """
    run(conn, ALTER_EVENT)
    scheduler = str(scalar(conn, EVENT_SCHEDULER) or "").upper()
    if scheduler == "DISABLED":
        raise HeartbeatError(
            "the event scheduler is DISABLED on the primary, so the replication heartbeat is "
            "never written: set `event_scheduler = ON` in its my.cnf and restart it"
        )
    if scheduler != "ON":
        run(conn, START_EVENT_SCHEDULER)


def heartbeat_age(conn: pymysql.connections.Connection) -> float | None:
    """Seconds since the freshest heartbeat row on this server; None when there is no row.

    On the replica this is the replication lag as readers see it (at most ~1 s when healthy,
    since the row is rewritten every second). Any account with SELECT on `heartbeat` may ask.
    """
    try:
        value = scalar(conn, HEARTBEAT_AGE)
    except pymysql.err.ProgrammingError as exc:
        if exc.args[0] == _NO_SUCH_TABLE:  # heartbeat not installed (yet)
            return None
        raise
    return None if value is None else float(value)
