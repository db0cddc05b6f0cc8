"""A throw-away server on a restored datadir: unpack a backup, start `mariadbd` on a free port.

Used by `verify` (a scratch copy compared with the replica, then deleted) and by `restore` (a
new cluster folder the operator inspects). The server is described by an ordinary
`ServerSpec`, so it gets its own datadir, socket, pid file, error log and `my.cnf` under its
folder and is started and stopped by the same code as the cluster's servers.
"""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ledgerguard.backup.errors import BackupCorrupt, BackupError
from ledgerguard.backup.manifest import DATA, Manifest, sha256_of
from ledgerguard.backup.tools import find_tool, run_tool
from ledgerguard.cluster.process import LocalServer, find_binary
from ledgerguard.cluster.spec import Role, ServerSpec
from ledgerguard.settings import Settings

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
    settings: Settings, base_dir: Path, *, role: Role, server_id: int, port: int | None = None
) -> ServerSpec:
    """A server under `base_dir` on `port` (a free one by default), without semi-sync."""
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
    )


def start_restored(settings: Settings, spec: ServerSpec) -> LocalServer:
    """Start `mariadbd` on the restored datadir of `spec` (its my.cnf written first)."""
    server = LocalServer(
        spec,
        mariadbd=find_binary(settings.mariadbd_path),
        install_db=find_binary(settings.install_db_path),
    )
    spec.tmpdir.mkdir(parents=True, exist_ok=True)
    spec.config_file.write_text(spec.render_config())
    server.start(timeout=max(settings.start_timeout, 120.0))
    return server
