"""An external scratch server: where `verify` and `restore` load backups when none can be started.

Locally, `verify` and `restore` start a throw-away `mariadbd` (`ledgerguard.backup.scratch`).
The Compose containers have no server binary, so there an **empty server of the cluster's
flavour** runs beside the cluster (`backup-scratch`, a `mysql:8.4` container) and
`LEDGERGUARD_BACKUP_SCRATCH_HOST` / `_PORT` / `_USER` / `LEDGERGUARD_BACKUP_SCRATCH_PASSWORD`
point at it. A logical backup is loaded into it over TCP and then compared (verify) or replayed
into (restore) by the same code as the local scratch server.

The server is wiped before each use (the application's databases dropped, replication and its
GTID history reset), so a second verify finds it as the first did. Because wiping is
destructive, it is only done to a server that carries our marker database
(`ledgerguard_scratch`, created on first use) or holds none of the application's databases:
a setting pointing at the real primary by mistake is refused, never wiped.
"""

from __future__ import annotations

from dataclasses import dataclass

import pymysql

from ledgerguard.backup.errors import BackupError
from ledgerguard.backup.logical import dumped_databases
from ledgerguard.backup.scratch import NO_BINLOG
from ledgerguard.cluster.admin import Endpoint, admin_connection, run
from ledgerguard.cluster.errors import ClusterError
from ledgerguard.cluster.replica import flavour_of
from ledgerguard.cluster.replication import forget_own_history, forget_source, stop_replica
from ledgerguard.db.dialect import Flavour, Statement
from ledgerguard.settings import Settings

#: The database that marks a server as ours to wipe.
MARKER_DATABASE = "ledgerguard_scratch"
CREATE_MARKER = Statement(f"CREATE DATABASE IF NOT EXISTS `{MARKER_DATABASE}`")


def _existing_databases(names: list[str]) -> Statement:
    marks = ", ".join(["%s"] * len(names))
    return Statement(
        f"SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ({marks})",
        tuple(names),
    )


def _drop_database(name: str) -> Statement:
    return Statement(f"DROP DATABASE IF EXISTS `{name}`")


@dataclass(frozen=True)
class ExternalScratch:
    """The configured scratch server and its administrative login."""

    endpoint: Endpoint
    user: str
    password: str

    @property
    def client_options(self) -> dict[str, str | int]:
        """Option-file login of the client programs (`mysql`, `mariadb`)."""
        return {
            "user": self.user,
            "password": self.password,
            "host": self.endpoint.host,
            "port": self.endpoint.port,
        }

    @property
    def address(self) -> str:
        return f"{self.endpoint.host}:{self.endpoint.port}"


def external_scratch(settings: Settings) -> ExternalScratch | None:
    """The scratch server of `LEDGERGUARD_BACKUP_SCRATCH_HOST`, None when it is not set."""
    if not settings.backup_scratch_host.strip():
        return None
    if settings.backup_scratch_password is None:
        raise BackupError(
            "LEDGERGUARD_BACKUP_SCRATCH_HOST is set but LEDGERGUARD_BACKUP_SCRATCH_PASSWORD is "
            f"not: set the password of {settings.backup_scratch_user} on the scratch server"
        )
    return ExternalScratch(
        endpoint=Endpoint("scratch", settings.backup_scratch_host, settings.backup_scratch_port),
        user=settings.backup_scratch_user,
        password=settings.backup_scratch_password.get_secret_value(),
    )


def _wipe(conn: pymysql.connections.Connection, settings: Settings, flavour: Flavour) -> None:
    run(conn, NO_BINLOG)
    run(conn, stop_replica(flavour))
    run(conn, forget_source(flavour))
    for name in dumped_databases(settings):
        run(conn, _drop_database(name))
    run(conn, forget_own_history(flavour))


def claim_scratch(settings: Settings, scratch: ExternalScratch) -> Flavour:
    """Make the scratch server empty (see module docstring); returns its flavour.

    `BackupError` when it cannot be reached, or when it holds the application's data without
    our marker (it may be a real server: it is left untouched).
    """
    try:
        with admin_connection(
            scratch.endpoint, user=scratch.user, password=scratch.password
        ) as conn:
            flavour = flavour_of(conn)
            ours = dumped_databases(settings)
            found = {row["SCHEMA_NAME"] for row in run(conn, _existing_databases(ours))}
            marked = bool(run(conn, _existing_databases([MARKER_DATABASE])))
            if found and not marked:
                raise BackupError(
                    f"the scratch server {scratch.address} holds {', '.join(sorted(found))} but "
                    f"not the `{MARKER_DATABASE}` marker: it may be a real server, so it is not "
                    "wiped. Point LEDGERGUARD_BACKUP_SCRATCH_HOST at an empty server (drop those "
                    "databases there if it really is the scratch server)"
                )
            run(conn, NO_BINLOG)
            run(conn, CREATE_MARKER)
            _wipe(conn, settings, flavour)
    except (pymysql.MySQLError, ClusterError) as exc:
        raise BackupError(f"the scratch server {scratch.address}: {exc}") from exc
    return flavour


def release_scratch(settings: Settings, scratch: ExternalScratch, flavour: Flavour) -> None:
    """Empty the scratch server again after a verify (the marker stays)."""
    try:
        with admin_connection(
            scratch.endpoint, user=scratch.user, password=scratch.password
        ) as conn:
            _wipe(conn, settings, flavour)
    except pymysql.MySQLError as exc:
        raise BackupError(f"the scratch server {scratch.address}: {exc}") from exc
