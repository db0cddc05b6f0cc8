"""The replication SQL of both supported flavours, in one place.

MariaDB (the local default) and MySQL 8.4 (the Compose stack) both replicate by GTID but spell it
differently:

=====================  ===========================================  ==============================
what                   MariaDB 10.11                                MySQL 8.4
=====================  ===========================================  ==============================
point the replica      `CHANGE MASTER TO ... MASTER_USE_GTID=       `CHANGE REPLICATION SOURCE TO
                       slave_pos`                                   ... SOURCE_AUTO_POSITION=1`
start / stop           `START SLAVE` / `STOP SLAVE`                 `START REPLICA` / `STOP REPLICA`
status                 `SHOW SLAVE STATUS` (`Slave_*` columns)      `SHOW REPLICA STATUS`
executed GTIDs         `@@gtid_current_pos`                         `@@gtid_executed`
wait for a GTID        `MASTER_GTID_WAIT(gtid, timeout)`            `WAIT_FOR_EXECUTED_GTID_SET`
server options         `gtid_strict_mode=ON`                        `gtid_mode=ON`,
                                                                    `enforce_gtid_consistency=ON`
=====================  ===========================================  ==============================

The flavour is detected from `SELECT VERSION()`. Everything here returns SQL text plus
parameters and never touches a connection, so both flavours are unit-tested without a server.
"""

from __future__ import annotations

import enum
import re
from dataclasses import asdict, dataclass
from typing import Any


class Flavour(enum.StrEnum):
    MARIADB = "mariadb"
    MYSQL = "mysql"


def detect_flavour(version: str) -> Flavour:
    """`10.11.19-MariaDB-0+deb12u1` → MariaDB; `8.4.3` → MySQL."""
    return Flavour.MARIADB if "mariadb" in version.lower() else Flavour.MYSQL


_IDENT = re.compile(r"^[A-Za-z0-9_.\-]{1,255}$")


def _check_host(host: str) -> str:
    if not _IDENT.match(host):
        raise ValueError(f"not a valid replication host: {host!r}")
    return host


@dataclass(frozen=True)
class Statement:
    """One SQL statement with its driver parameters (pymysql `%s` style)."""

    sql: str
    params: tuple[Any, ...] = ()


def server_options(flavour: Flavour) -> dict[str, str]:
    """GTID options each server of the flavour needs in its configuration."""
    if flavour is Flavour.MARIADB:
        return {"gtid_strict_mode": "ON", "log_slave_updates": "ON", "binlog_format": "ROW"}
    return {"gtid_mode": "ON", "enforce_gtid_consistency": "ON", "log_replica_updates": "ON"}


def semi_sync_options(flavour: Flavour, *, primary: bool, timeout_ms: int) -> dict[str, str]:
    """Semi-synchronous replication settings (MariaDB: built in; MySQL: the 8.4 plugins)."""
    if flavour is Flavour.MARIADB:
        if primary:
            return {
                "rpl_semi_sync_master_enabled": "ON",
                "rpl_semi_sync_master_timeout": str(timeout_ms),
                "rpl_semi_sync_master_wait_point": "AFTER_SYNC",
                "rpl_semi_sync_slave_enabled": "ON",
            }
        return {"rpl_semi_sync_slave_enabled": "ON"}
    if primary:
        return {
            "rpl_semi_sync_source_enabled": "ON",
            "rpl_semi_sync_source_timeout": str(timeout_ms),
            "rpl_semi_sync_source_wait_point": "AFTER_SYNC",
        }
    return {"rpl_semi_sync_replica_enabled": "ON"}


def point_replica_at(
    flavour: Flavour,
    *,
    host: str,
    port: int,
    user: str,
    password: str,
    connect_retry: int = 5,
) -> Statement:
    """The statement that makes a replica follow `host:port` by GTID auto-positioning."""
    host = _check_host(host)
    if flavour is Flavour.MARIADB:
        return Statement(
            "CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=%s, MASTER_USER=%s, "
            "MASTER_PASSWORD=%s, MASTER_CONNECT_RETRY=%s, MASTER_USE_GTID=slave_pos",
            (host, int(port), user, password, int(connect_retry)),
        )
    return Statement(
        "CHANGE REPLICATION SOURCE TO SOURCE_HOST=%s, SOURCE_PORT=%s, SOURCE_USER=%s, "
        "SOURCE_PASSWORD=%s, SOURCE_CONNECT_RETRY=%s, SOURCE_AUTO_POSITION=1, "
        "GET_SOURCE_PUBLIC_KEY=1",
        (host, int(port), user, password, int(connect_retry)),
    )


def start_replica(flavour: Flavour) -> Statement:
    return Statement("START SLAVE" if flavour is Flavour.MARIADB else "START REPLICA")


def stop_replica(flavour: Flavour) -> Statement:
    return Statement("STOP SLAVE" if flavour is Flavour.MARIADB else "STOP REPLICA")


def replica_status_query(flavour: Flavour) -> Statement:
    return Statement("SHOW SLAVE STATUS" if flavour is Flavour.MARIADB else "SHOW REPLICA STATUS")


def executed_gtids_query(flavour: Flavour) -> Statement:
    """GTIDs this server has applied or written (what a reader can rely on being visible)."""
    if flavour is Flavour.MARIADB:
        return Statement("SELECT @@GLOBAL.gtid_current_pos")
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
