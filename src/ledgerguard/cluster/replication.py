"""The statements that administer replication, for both supported flavours.

MariaDB (the local default) and MySQL 8.4 (the Compose stack) both replicate by GTID but spell it
differently:

=====================  ===========================================  ==============================
what                   MariaDB 10.11                                MySQL 8.4
=====================  ===========================================  ==============================
point the replica      `CHANGE MASTER TO ... MASTER_USE_GTID=       `CHANGE REPLICATION SOURCE TO
                       slave_pos`                                   ... SOURCE_AUTO_POSITION=1`
start / stop           `START SLAVE` / `STOP SLAVE`                 `START REPLICA` / `STOP REPLICA`
server options         `gtid_strict_mode=ON`                        `gtid_mode=ON`,
                                                                    `enforce_gtid_consistency=ON`
=====================  ===========================================  ==============================

Flavour detection and the queries that only *read* replication state (executed GTIDs, waiting for
a GTID, replica status) live in `ledgerguard.db.dialect`, the one home of the dialect SQL, because
the API and the writer need them too and `db` must not import `cluster`. Everything here returns
SQL text plus parameters and never touches a connection.
"""

from __future__ import annotations

import re

from ledgerguard.db.dialect import Flavour, Statement

_IDENT = re.compile(r"^[A-Za-z0-9_.\-]{1,255}$")


def _check_host(host: str) -> str:
    if not _IDENT.match(host):
        raise ValueError(f"not a valid replication host: {host!r}")
    return host


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


def forget_source(flavour: Flavour) -> Statement:
    """Drop a stopped replica's channel, source and credentials (`RESET ... ALL`)."""
    return Statement("RESET SLAVE ALL" if flavour is Flavour.MARIADB else "RESET REPLICA ALL")


def forget_own_history(flavour: Flavour) -> Statement:
    """Delete the server's binlogs and GTID history: an empty server again (a scratch server
    before a dump that sets its own GTID state; MySQL 8.4 renamed `RESET MASTER`)."""
    return Statement(
        "RESET MASTER" if flavour is Flavour.MARIADB else "RESET BINARY LOGS AND GTIDS"
    )


def start_after_own_history(flavour: Flavour) -> Statement | None:
    """Make a MariaDB replica-to-be start after everything it already has (MySQL: not needed).

    Nothing on a fresh replica, its own history on a demoted primary (whose extra transactions,
    if any, then surface as a clear replication error instead of silent divergence).
    """
    if flavour is Flavour.MARIADB:
        return Statement("SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_binlog_pos")
    return None
