"""What `cluster status` reports: a flavour-neutral snapshot of both servers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pymysql

from ledgerguard.cluster.admin import admin_connection, run, scalar
from ledgerguard.cluster.errors import ClusterError
from ledgerguard.cluster.process import LocalServer
from ledgerguard.db.dialect import (
    VERSION_QUERY,
    Flavour,
    ReplicaStatus,
    Statement,
    binlog_gtids_query,
    detect_flavour,
    executed_gtids_query,
    parse_replica_status,
    replica_status_query,
)


@dataclass
class ServerStatus:
    """One server as seen from its root account; `error` says why a field is missing."""

    role: str
    port: int
    up: bool
    pid: int | None = None
    version: str | None = None
    read_only: bool | None = None
    gtid_executed: str | None = None
    gtid_binlog_pos: str | None = None
    replication: ReplicaStatus | None = None
    #: primary only: commits are currently acknowledged by a replica (semi-sync active)
    semi_sync_active: bool | None = None
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["replication"] = self.replication.to_dict() if self.replication else None
        return data


@dataclass
class ClusterStatus:
    primary: ServerStatus
    replica: ServerStatus
    notes: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        """Both servers up and the replica's IO and SQL threads running."""
        repl = self.replica.replication
        return self.primary.up and self.replica.up and repl is not None and repl.healthy

    def to_dict(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "primary": self.primary.to_dict(),
            "replica": self.replica.to_dict(),
        }


def server_status(server: LocalServer, *, root_password: str) -> ServerStatus:
    """Ask one server for its version, GTID positions and (replica) replication threads."""
    spec = server.spec
    status = ServerStatus(role=spec.role, port=spec.port, up=False, pid=server.pid())
    if status.pid is None:
        status.error = "not running"
        return status
    try:
        with admin_connection(spec, password=root_password, connect_timeout=2) as conn:
            status.up = True
            status.version = scalar(conn, VERSION_QUERY)
            flavour = detect_flavour(status.version or "")
            status.read_only = bool(scalar(conn, Statement("SELECT @@GLOBAL.read_only")))
            status.gtid_executed = scalar(conn, executed_gtids_query(flavour))
            if flavour is Flavour.MARIADB:
                status.gtid_binlog_pos = scalar(conn, binlog_gtids_query(flavour))
            if not spec.is_replica and flavour is Flavour.MARIADB:
                rows = run(conn, Statement("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_status'"))
                status.semi_sync_active = bool(rows) and rows[0]["Value"] == "ON"
            if spec.is_replica:
                rows = run(conn, replica_status_query(flavour))
                status.replication = parse_replica_status(flavour, rows[0] if rows else None)
    except (ClusterError, pymysql.MySQLError) as exc:
        status.error = str(exc)
    return status
