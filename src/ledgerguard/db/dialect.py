"""The MySQL/MariaDB dialect in one place: flavour detection and every GTID/replication query.

MariaDB (the local default) and MySQL 8.4 (the Compose stack) both replicate by GTID but spell it
differently:

=====================  ===========================================  ==============================
what                   MariaDB 10.11                                MySQL 8.4
=====================  ===========================================  ==============================
status                 `SHOW SLAVE STATUS` (`Slave_*` columns)      `SHOW REPLICA STATUS`
executed GTIDs         `@@gtid_current_pos`                         `@@gtid_executed`
written GTIDs          `@@gtid_binlog_pos`                          `@@gtid_executed`
applied (replica)      `@@gtid_slave_pos`                           `@@gtid_executed`
session's last commit  `@@SESSION.last_gtid`                        `@@gtid_executed` (superset)
wait for a GTID        `MASTER_GTID_WAIT(gtid, timeout)`            `WAIT_FOR_EXECUTED_GTID_SET`
=====================  ===========================================  ==============================

The flavour is detected from `SELECT VERSION()`. Everything here returns SQL text plus parameters
and never touches a connection, so both flavours are unit-tested without a server. Readers (the
API, the writer, the health checks, the benchmarks) take their queries from here; the statements
that *change* replication (point a replica at a source, start/stop it, server options) are the
cluster's business and live in `ledgerguard.cluster.replication`.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from typing import Any


class Flavour(enum.StrEnum):
    MARIADB = "mariadb"
    MYSQL = "mysql"


def detect_flavour(version: str) -> Flavour:
    """`10.11.19-MariaDB-0+deb12u1` → MariaDB; `8.4.3` → MySQL."""
    return Flavour.MARIADB if "mariadb" in version.lower() else Flavour.MYSQL


@dataclass(frozen=True)
class Statement:
    """One SQL statement with its driver parameters (pymysql `%s` style)."""

    sql: str
    params: tuple[Any, ...] = ()


#: The server's version string, from which `detect_flavour` tells the flavour.
VERSION_QUERY = Statement("SELECT VERSION()")


def replica_status_query(flavour: Flavour) -> Statement:
    return Statement("SHOW SLAVE STATUS" if flavour is Flavour.MARIADB else "SHOW REPLICA STATUS")


def executed_gtids_query(flavour: Flavour) -> Statement:
    """GTIDs this server has applied or written (what a reader can rely on being visible)."""
    if flavour is Flavour.MARIADB:
        return Statement("SELECT @@GLOBAL.gtid_current_pos")
    return Statement("SELECT @@GLOBAL.gtid_executed")


def snapshot_position_queries(flavour: Flavour) -> tuple[Statement, ...]:
    """Inside `START TRANSACTION WITH CONSISTENT SNAPSHOT`: the GTID position the snapshot has.

    MariaDB keeps the binlog coordinates of the snapshot (`binlog_snapshot_file` / `_position`)
    and `BINLOG_GTID_POS` turns them into a GTID position; run the first statement, then the
    second with the file and position it returned. MySQL has no such pair: its executed set
    read right after the snapshot opens is used (a transaction committed in between is then
    counted once in the state and once more from the stream, which only matters for
    terminal counts).
    """
    if flavour is Flavour.MARIADB:
        return (
            Statement("SHOW STATUS LIKE 'binlog_snapshot_%%'"),
            Statement("SELECT BINLOG_GTID_POS(%s, %s)"),
        )
    return (executed_gtids_query(flavour),)


def binlog_gtids_query(flavour: Flavour) -> Statement:
    """GTIDs this server has written to its binary log: a primary's position.

    On a MariaDB primary this is what its replica compares `gtid_slave_pos` with; MySQL has the
    one executed set.
    """
    if flavour is Flavour.MARIADB:
        return Statement("SELECT @@GLOBAL.gtid_binlog_pos")
    return Statement("SELECT @@GLOBAL.gtid_executed")


def applied_gtids_query(flavour: Flavour) -> Statement:
    """GTIDs a replica has applied from its source (MariaDB `gtid_slave_pos`)."""
    if flavour is Flavour.MARIADB:
        return Statement("SELECT @@GLOBAL.gtid_slave_pos")
    return Statement("SELECT @@GLOBAL.gtid_executed")


def last_gtid_query(flavour: Flavour) -> Statement:
    """The GTID of this session's last commit: the read-your-writes token."""
    if flavour is Flavour.MARIADB:
        return Statement("SELECT @@SESSION.last_gtid")
    # MySQL reports it through session tracking; the executed set is a safe superset.
    return Statement("SELECT @@GLOBAL.gtid_executed")


def wait_for_gtid(flavour: Flavour, gtid: str, timeout_s: float) -> Statement:
    """A query returning 0 once `gtid` is applied here, non-zero (or -1) on timeout."""
    if flavour is Flavour.MARIADB:
        return Statement("SELECT MASTER_GTID_WAIT(%s, %s)", (gtid, float(timeout_s)))
    return Statement("SELECT WAIT_FOR_EXECUTED_GTID_SET(%s, %s)", (gtid, float(timeout_s)))


@dataclass(frozen=True)
class ReplicaStatus:
    """Flavour-neutral view of one replication channel."""

    configured: bool
    source: str | None = None
    io_running: bool = False
    sql_running: bool = False
    seconds_behind: int | None = None
    last_io_error: str = ""
    last_sql_error: str = ""
    gtid_io_pos: str = ""

    @property
    def healthy(self) -> bool:
        return self.configured and self.io_running and self.sql_running

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"healthy": self.healthy}


def parse_replica_status(flavour: Flavour, row: dict[str, Any] | None) -> ReplicaStatus:
    """Normalise one `SHOW SLAVE/REPLICA STATUS` row (dict cursor) of either flavour."""
    if not row:
        return ReplicaStatus(configured=False)
    prefix = "Master" if flavour is Flavour.MARIADB else "Source"
    thread = "Slave" if flavour is Flavour.MARIADB else "Replica"
    behind = row.get(f"Seconds_Behind_{prefix}")
    if flavour is Flavour.MARIADB:
        gtid_io = row.get("Gtid_IO_Pos") or ""
    else:
        gtid_io = row.get("Retrieved_Gtid_Set") or ""
    return ReplicaStatus(
        configured=True,
        source=f"{row.get(f'{prefix}_Host')}:{row.get(f'{prefix}_Port')}",
        io_running=row.get(f"{thread}_IO_Running") == "Yes",
        sql_running=row.get(f"{thread}_SQL_Running") == "Yes",
        seconds_behind=None if behind is None else int(behind),
        last_io_error=row.get("Last_IO_Error") or "",
        last_sql_error=row.get("Last_SQL_Error") or "",
        gtid_io_pos=gtid_io.replace("\n", ""),
    )
