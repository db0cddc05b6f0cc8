"""The local two-server cluster: `up`, `down`, `reset`, `status` and the pieces tests need.

`up` is idempotent and safe after a reboot: it (re)writes each `my.cnf`, creates a datadir only
when there is none, starts what is not running, re-applies accounts and grants, points the
replica at the primary only when it follows nobody yet (later starts resume from the replica's own
GTID position), runs the migrations on the primary and waits until the replica has caught up.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from ledgerguard.cluster.admin import admin_connection
from ledgerguard.cluster.checksum import ChecksumReport, compare_tables
from ledgerguard.cluster.errors import AccessDenied, ClusterError
from ledgerguard.cluster.heartbeat import install_heartbeat
from ledgerguard.cluster.process import LocalServer, binary_version, find_binary
from ledgerguard.cluster.provision import provision_primary, secure_root
from ledgerguard.cluster.replica import (
    executed_gtids,
    follow_primary,
    wait_until_applied,
)
from ledgerguard.cluster.spec import Role, load_swapped, server_specs
from ledgerguard.cluster.status import ClusterStatus, server_status
from ledgerguard.files import private_dir
from ledgerguard.settings import Settings

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    """Default progress sink."""


@dataclass
class UpResult:
    started: list[str]
    created: list[str]

    @property
    def already_running(self) -> bool:
        return not self.started


class LocalCluster:
    """A MariaDB primary and its GTID replica as local processes under `settings.state_dir`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        #: True after a failover: the `replica/` server acts as the primary (topology.json)
        self.swapped = load_swapped(settings)
        self.specs = server_specs(settings, swapped=self.swapped)

    @cached_property
    def _binaries(self) -> tuple[str, str, str]:
        mariadbd = find_binary(self.settings.mariadbd_path)
        install_db = find_binary(self.settings.install_db_path)
        return mariadbd, install_db, binary_version(mariadbd)

    def server(self, role: Role) -> LocalServer:
        mariadbd, install_db, _ = self._binaries
        return LocalServer(self.specs[role], mariadbd=mariadbd, install_db=install_db)

    @property
    def root_password(self) -> str:
        return self.settings.mysql_root_password.get_secret_value()

    # --- lifecycle ---------------------------------------------------------------------------
    def up(self, *, progress: Progress = _quiet, migrate: bool = True) -> UpResult:
        """Bring the whole cluster to a healthy, migrated state (see module docstring)."""
        result = UpResult(started=[], created=[])
        private_dir(self.settings.state_dir)  # sockets, logs, key files: the owner's only
        for role in ("primary", "replica"):
            server = self.server(role)
            if server.prepare(binary_version_=self._binaries[2]):
                result.created.append(role)
                progress(f"created the {role} datadir {server.spec.datadir}")
            if server.start(timeout=self.settings.start_timeout):
                result.started.append(role)
                progress(f"started the {role} on port {server.spec.port}")
            self._secure_root_if_blank(role)
            if role == "primary":
                with admin_connection(server.spec, password=self.root_password) as conn:
                    provision_primary(conn, self.settings)
                    install_heartbeat(conn)
        self.connect_replica(progress=progress)
        if migrate:
            from ledgerguard.db.migrate import upgrade

            upgrade(self.settings)
            progress("migrations applied on the primary")
        self.wait_for_replica(timeout=self.settings.start_timeout)
        return result

    def _secure_root_if_blank(self, role: Role) -> None:
        """Set root's password on a server still carrying the install's blank one.

        Decided by trying the configured password first, so an interrupted first `up` is finished
        by the next one rather than leaving a server nobody can log in to.
        """
        spec = self.specs[role]
        try:
            with admin_connection(spec, password=self.root_password):
                return
        except AccessDenied:
            try:
                with admin_connection(spec, password="") as conn:
                    secure_root(conn, password=self.root_password)
            except AccessDenied:
                pass
            else:
                return
            raise

    def connect_replica(self, *, progress: Progress = _quiet) -> None:
        """Point the replica at the primary by GTID if needed and start replication."""
        with admin_connection(self.specs["replica"], password=self.root_password) as conn:
            follow_primary(
                conn,
                self.settings,
                primary_host=self.specs["primary"].host,
                primary_port=self.specs["primary"].port,
                progress=progress,
            )

    def down(self, *, progress: Progress = _quiet) -> list[str]:
        """Stop the replica, then the primary; returns the roles that were running."""
        stopped = []
        for role in ("replica", "primary"):
            if self.server(role).stop(root_password=self.root_password):
                stopped.append(role)
                progress(f"stopped the {role}")
        return stopped

    def reset(self, *, progress: Progress = _quiet) -> None:
        """Stop everything and wipe the state directory's server folders (data is lost)."""
        for role in ("replica", "primary"):
            server = self.server(role)
            try:
                server.stop(root_password=self.root_password)
            except ClusterError:
                server.kill()
            if server.is_running():
                server.kill()
            shutil.rmtree(server.spec.base_dir, ignore_errors=True)
            progress(f"wiped the {role} ({server.spec.base_dir})")

    def status(self) -> ClusterStatus:
        return ClusterStatus(
            primary=server_status(self.server("primary"), root_password=self.root_password),
            replica=server_status(self.server("replica"), root_password=self.root_password),
        )

    # --- replication ---------------------------------------------------------------------------
    def primary_gtid(self) -> str:
        """GTIDs written by the primary so far."""
        with admin_connection(self.specs["primary"], password=self.root_password) as conn:
            return executed_gtids(conn)

    def wait_for_replica(self, *, timeout: float) -> None:
        """Block until the replica has applied everything the primary has written so far.

        Raises `ReplicationError` with the replica's last error when its SQL thread stopped, or
        when it has not caught up within `timeout` seconds.
        """
        target = self.primary_gtid()
        with admin_connection(self.specs["replica"], password=self.root_password) as conn:
            wait_until_applied(conn, target, timeout=timeout)

    def checksum(self, *, chunk_size: int = 10_000) -> ChecksumReport:
        """Compare the application tables on both servers (see `ledgerguard.cluster.checksum`)."""
        with (
            admin_connection(self.specs["primary"], password=self.root_password) as primary,
            admin_connection(self.specs["replica"], password=self.root_password) as replica,
        ):
            return compare_tables(
                primary, replica, schema=self.settings.database, chunk_size=chunk_size
            )
