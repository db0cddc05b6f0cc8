"""What each local server is: its files, its port and its `my.cnf`.

Both servers live under the state directory (`LEDGERGUARD_HOME`), one folder each, holding the
datadir, socket, pid file, error log, tmpdir and the generated `my.cnf`, so two clusters (a demo
and a test session) never share a file.

Durability choices, and why they differ between the two servers:

* The **primary** commits durably: `innodb_flush_log_at_trx_commit=1` and `sync_binlog=1`. A 201
  from the API means the row and its binlog event are on disk; group commit keeps this fast under
  concurrency.
* **Semi-synchronous replication** (`rpl_semi_sync_master_wait_point=AFTER_SYNC`, lossless): a
  commit is acknowledged to the client only after the replica has the event in its relay log, so
  failing over to the replica loses no acknowledged transaction. If the replica does not answer
  within `semi_sync_timeout_ms`, the primary continues asynchronously (and says so in
  `cluster status`) rather than stopping writes; it returns to semi-sync when the replica is back.
* The **replica** applies in parallel (`slave_parallel_mode=optimistic`) and relaxes its own fsync
  (`innodb_flush_log_at_trx_commit=2`, `sync_binlog=0`). Measured on a 2-core machine, a serial,
  fully durable replica fell 30-60 s behind a primary taking ~9k inserts/s and caught up at once with
  relaxed fsync. Nothing is lost by this: every transaction is durable on the primary, and after a
  replica crash the replica restarts from its crash-safe `mysql.gtid_slave_pos` (transactional,
  InnoDB) and fetches whatever it lost again by GTID.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ledgerguard.cluster.replication import semi_sync_options
from ledgerguard.db.dialect import Flavour
from ledgerguard.db.topology import load_topology
from ledgerguard.settings import Settings

Role = Literal["primary", "replica"]


@dataclass(frozen=True)
class ServerSpec:
    """Everything needed to start one `mariadbd` and to reach it."""

    role: Role
    server_id: int
    host: str
    bind_address: str
    port: int
    base_dir: Path
    buffer_pool_size: str
    max_connections: int
    parallel_threads: int = 0
    semi_sync_timeout_ms: int = 0
    #: A throw-away server (`backup verify`'s scratch copy): no TCP listener, and root's
    #: password replaced at start by the statements of `root_reset_file` (written just before
    #: the start, deleted right after), so verifying needs neither the copy's root password
    #: (the replica's) nor any secret but the backup account's.
    one_time_root: bool = False

    @property
    def datadir(self) -> Path:
        return self.base_dir / "data"

    @property
    def socket(self) -> Path:
        return self.base_dir / "mariadbd.sock"

    @property
    def pid_file(self) -> Path:
        return self.base_dir / "mariadbd.pid"

    @property
    def error_log(self) -> Path:
        return self.base_dir / "error.log"

    @property
    def tmpdir(self) -> Path:
        return self.base_dir / "tmp"

    @property
    def config_file(self) -> Path:
        return self.base_dir / "my.cnf"

    @property
    def root_reset_file(self) -> Path:
        return self.base_dir / "reset-root.sql"

    @property
    def is_replica(self) -> bool:
        return self.role == "replica"

    def render_config(self) -> str:
        """The `my.cnf` this server is started with (`--defaults-file`, nothing else is read)."""
        options: dict[str, str | int | None] = {
            "server_id": self.server_id,
            "port": self.port,
            "bind_address": self.bind_address,
            "datadir": self.datadir,
            "socket": self.socket,
            "pid_file": self.pid_file,
            "log_error": self.error_log,
            "tmpdir": self.tmpdir,
            "skip_name_resolve": None,
            "character_set_server": "utf8mb4",
            "collation_server": "utf8mb4_unicode_ci",
            "default_time_zone": "+00:00",
            "max_connections": self.max_connections,
            "innodb_buffer_pool_size": self.buffer_pool_size,
            "innodb_log_file_size": "256M",
            # consecutive ids for multi-row INSERTs (see ledgerguard.db.writer)
            "innodb_autoinc_lock_mode": 1,
            # GTID replication; both servers keep a binlog so either can be promoted.
            "log_bin": self.datadir / "mariadb-bin",
            "log_bin_index": self.datadir / "mariadb-bin.index",
            "binlog_format": "ROW",
            "gtid_strict_mode": "ON",
            "log_slave_updates": "ON",
            "binlog_expire_logs_seconds": 7 * 24 * 3600,
            # row events carry column names: the streaming scorer (ledgerguard.realtime) reads
            # the replica's binlog and refuses to start without it
            "binlog_row_metadata": "FULL",
            # no copy of each row-based statement's text before its rows (MariaDB's default
            # logs it, the replica logs it again, every binlog reader is sent it): the scorer's
            # verdict upserts are ~100 KiB of SQL each (benchmarks/README.md, "Verdict
            # writes"); GTID replication, crash recovery and point-in-time restores read rows
            "binlog_annotate_row_events": "OFF",
            "relay_log": self.datadir / "relay-bin",
        }
        if self.one_time_root:
            options |= {"skip_networking": None, "init_file": self.root_reset_file}
        if self.semi_sync_timeout_ms:
            # Either server may be promoted, so both can acknowledge; only the primary waits.
            options |= semi_sync_options(
                Flavour.MARIADB, primary=not self.is_replica, timeout_ms=self.semi_sync_timeout_ms
            )
            # either server may be promoted, so both can acknowledge
            options["rpl_semi_sync_slave_enabled"] = "ON"
            # a demoted primary restarting after a crash drops the binlog tail no replica
            # acknowledged (it was never confirmed to a client) instead of committing it, so it
            # can rejoin the new primary by GTID without diverging
            options["init_rpl_role"] = "SLAVE" if self.is_replica else "MASTER"
        # the replication heartbeat's writer event (ledgerguard.cluster.heartbeat) runs on the
        # primary only: a demoted primary restarting as replica must not write rows of its own
        options["event_scheduler"] = "OFF" if self.is_replica else "ON"
        if self.is_replica:
            options |= {
                "read_only": "ON",
                "slave_parallel_threads": self.parallel_threads,
                "slave_parallel_mode": "optimistic",
                "innodb_flush_log_at_trx_commit": 2,
                "sync_binlog": 0,
            }
        else:
            options |= {"innodb_flush_log_at_trx_commit": 1, "sync_binlog": 1}
        lines = [
            f"# generated by ledgerguard for the {self.role}; edits are overwritten",
            "[mariadbd]",
        ]
        for key, value in options.items():
            lines.append(key if value is None else f"{key} = {value}")
        return "\n".join(lines) + "\n"


def load_swapped(settings: Settings) -> bool:
    """True after a failover: the `replica` folder's server acts as the primary."""
    return load_topology(settings).swapped


def server_specs(settings: Settings, *, swapped: bool | None = None) -> dict[Role, ServerSpec]:
    """The acting primary and replica of the local cluster described by `settings`.

    Each server keeps its folder, port and `server_id` for life (`primary/` on
    `LEDGERGUARD_PRIMARY_PORT` with id 1, `replica/` on `LEDGERGUARD_REPLICA_PORT` with id 2);
    after `cluster failover` the roles swap (recorded in `topology.json`), so `specs["primary"]`
    is always the server that takes writes.
    """
    state = settings.state_dir
    if swapped is None:
        swapped = load_swapped(settings)
    nodes = [
        {
            "server_id": 1,
            "host": settings.primary_host,
            "port": settings.primary_port,
            "base_dir": state / "primary",
            "buffer_pool_size": settings.innodb_buffer_pool_size,
        },
        {
            "server_id": 2,
            "host": settings.replica_host,
            "port": settings.replica_port,
            "base_dir": state / "replica",
            "buffer_pool_size": settings.replica_innodb_buffer_pool_size,
        },
    ]
    acting_primary, acting_replica = (nodes[1], nodes[0]) if swapped else (nodes[0], nodes[1])
    common = {
        "bind_address": settings.bind_address,
        "max_connections": settings.max_connections,
        "semi_sync_timeout_ms": settings.semi_sync_timeout_ms,
    }
    return {
        "primary": ServerSpec(role="primary", **acting_primary, **common),
        "replica": ServerSpec(
            role="replica",
            parallel_threads=settings.replica_parallel_threads,
            **acting_replica,
            **common,
        ),
    }
