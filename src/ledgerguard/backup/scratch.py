"""A throw-away server on a restored datadir: unpack a backup, start `mariadbd` on a free port.

Used by `verify` (a scratch copy compared with the replica, then deleted) and by `restore` (a
new cluster folder the operator inspects). The server is described by an ordinary
`ServerSpec`, so it gets its own datadir, socket, pid file, error log and `my.cnf` under its
folder and is started and stopped by the same code as the cluster's servers.
"""

from __future__ import annotations

import secrets
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ledgerguard.backup.errors import BackupCorrupt, BackupError
from ledgerguard.backup.manifest import DATA, Manifest, sha256_of
from ledgerguard.backup.tools import find_tool, run_tool
from ledgerguard.cluster.process import LocalServer, binary_version, find_binary
from ledgerguard.cluster.spec import Role, ServerSpec
from ledgerguard.db.dialect import Statement
from ledgerguard.files import write_private
from ledgerguard.settings import Settings

#: Keeps what a session does on a scratch or restored server out of its binlog (and GTIDs).
NO_BINLOG = Statement("SET SESSION sql_log_bin = 0")
#: server_id of scratch servers: never one of the cluster's (1, 2).
SCRATCH_SERVER_ID = 101


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def unpack_backup(folder: Path, manifest: Manifest, datadir: Path) -> None:
    """Decompress every file of the backup in `folder` into `datadir` and check its checksum.

    A file zstd cannot read (truncated, damaged frame) or whose content differs from the
    manifest raises `BackupCorrupt` naming it.
    """
    zstd = find_tool("zstd")
    datadir.mkdir(parents=True, exist_ok=True)

    def one(entry) -> str | None:
        stored = folder / DATA / entry.stored_path
        target = datadir / entry.path
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            run_tool([zstd, "-d", "-q", "-f", str(stored), "-o", str(target)], what="zstd -d")
        except BackupError as exc:
            return f"{stored}: cannot be decompressed ({str(exc).splitlines()[-1]})"
        if target.stat().st_size != entry.size or sha256_of(target) != entry.sha256:
            return f"{stored}: its content differs from the manifest"
        return None

    with ThreadPoolExecutor(max_workers=4) as pool:
        problems = [p for p in pool.map(one, manifest.files) if p]
    if problems:
        raise BackupCorrupt(f"backup {manifest.id} is damaged: " + "; ".join(problems))


def scratch_spec(
    settings: Settings,
    base_dir: Path,
    *,
    role: Role,
    server_id: int,
    port: int | None = None,
    one_time_root: bool = False,
) -> ServerSpec:
    """A server under `base_dir` on `port` (a free one by default), without semi-sync
    (`one_time_root`: see `ServerSpec`)."""
    return ServerSpec(
        role=role,
        server_id=server_id,
        host="127.0.0.1",
        bind_address="127.0.0.1",
        port=port or free_port(),
        base_dir=base_dir,
        buffer_pool_size=settings.replica_innodb_buffer_pool_size,
        max_connections=50,
        parallel_threads=settings.replica_parallel_threads,
        one_time_root=one_time_root,
    )


def start_restored(settings: Settings, spec: ServerSpec) -> LocalServer:
    """Start `mariadbd` on the restored datadir of `spec` (its my.cnf written first), after
    rolling back what the copy caught half-committed (`LocalServer.roll_back_prepared`)."""
    server = LocalServer(
        spec,
        mariadbd=find_binary(settings.mariadbd_path),
        install_db=find_binary(settings.install_db_path),
    )
    spec.tmpdir.mkdir(parents=True, exist_ok=True)
    spec.config_file.write_text(spec.render_config())
    timeout = max(settings.start_timeout, 120.0)
    server.roll_back_prepared(timeout=timeout)
    server.start(timeout=timeout)
    return server


def start_fresh(settings: Settings, spec: ServerSpec) -> LocalServer:
    """A new, empty server on `spec` (`mariadb-install-db`, blank root), started: where a
    logical backup is loaded."""
    mariadbd = find_binary(settings.mariadbd_path)
    server = LocalServer(spec, mariadbd=mariadbd, install_db=find_binary(settings.install_db_path))
    server.prepare(binary_version_=binary_version(mariadbd))
    server.start(timeout=max(settings.start_timeout, 120.0))
    return server


def start_with_one_time_root(
    settings: Settings, spec: ServerSpec, *, fresh: bool
) -> tuple[LocalServer, str]:
    """Start the scratch server `spec` (`one_time_root`) on a restored datadir, or on a new one
    when `fresh`, with a random root password; returns it and the password.

    The password is set by the server itself at start (`init_file`, outside the binlog, so the
    copy's GTID history stays the backup's), and the file holding it is deleted at once.
    """
    if not spec.one_time_root:
        raise ValueError("start_with_one_time_root needs a spec with one_time_root=True")
    password = secrets.token_urlsafe(24)  # letters, digits, - and _: safe inside the quotes
    spec.base_dir.mkdir(parents=True, exist_ok=True)
    write_private(
        spec.root_reset_file,
        f"{NO_BINLOG.sql};\nALTER USER 'root'@'localhost' IDENTIFIED BY '{password}';\n",
    )
    try:
        server = start_fresh(settings, spec) if fresh else start_restored(settings, spec)
    finally:
        spec.root_reset_file.unlink(missing_ok=True)
    return server, password
