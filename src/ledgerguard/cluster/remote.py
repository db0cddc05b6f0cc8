"""Provisioning servers we do not start ourselves: the Compose stack's MySQL 8.4 containers
(or any primary/replica pair reachable over TCP with root).

It is the same code as the local path: `provision_primary` for accounts and the database,
`follow_primary` for GTID replication (MySQL: `SOURCE_AUTO_POSITION=1`), the Alembic migrations
on the primary, and `wait_until_applied`. Only the connection differs (TCP instead of the local
socket) and root is expected to exist already (the MySQL image creates it from
`MYSQL_ROOT_PASSWORD`). Idempotent: the Compose one-shot service runs it on every `up`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ledgerguard.cluster.admin import Endpoint, admin_connection
from ledgerguard.cluster.errors import AccessDenied, ClusterError
from ledgerguard.cluster.heartbeat import install_heartbeat
from ledgerguard.cluster.provision import provision_primary
from ledgerguard.cluster.replica import (
    executed_gtids,
    flavour_of,
    follow_primary,
    wait_until_applied,
)
from ledgerguard.db.dialect import Flavour
from ledgerguard.settings import Settings


def _wait_for_root(endpoint: Endpoint, password: str, *, timeout: float) -> None:
    """Containers answer a while after they start: retry until root gets in (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with admin_connection(endpoint, password=password, connect_timeout=2):
                return
        except AccessDenied:
            raise
        except ClusterError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def provision_remote(
    settings: Settings,
    *,
    expected_flavour: Flavour | None = None,
    timeout: float = 120.0,
    progress: Callable[[str], None],
) -> Flavour:
    """Accounts, replication and schema on `settings.primary_*` / `settings.replica_*`."""
    from ledgerguard.db.migrate import upgrade

    password = settings.mysql_root_password.get_secret_value()
    primary = Endpoint("primary", settings.primary_host, settings.primary_port)
    replica = Endpoint("replica", settings.replica_host, settings.replica_port)
    for endpoint in (primary, replica):
        _wait_for_root(endpoint, password, timeout=timeout)
    with admin_connection(primary, password=password) as conn:
        flavour = flavour_of(conn)
        if expected_flavour is not None and flavour is not expected_flavour:
            raise ClusterError(
                f"--flavour {expected_flavour} given, but the primary at {primary.host}:"
                f"{primary.port} is {flavour}"
            )
        provision_primary(conn, settings)
        install_heartbeat(conn)
        progress(f"accounts and database `{settings.database}` provisioned on the primary")
    with admin_connection(replica, password=password) as conn:
        follow_primary(
            conn,
            settings,
            primary_host=settings.primary_host,
            primary_port=settings.primary_port,
            progress=progress,
        )
    upgrade(settings)
    progress("migrations applied on the primary")
    with admin_connection(primary, password=password) as conn:
        target = executed_gtids(conn)
    with admin_connection(replica, password=password) as conn:
        wait_until_applied(conn, target, timeout=timeout)
    progress("the replica has applied everything the primary wrote")
    return flavour
