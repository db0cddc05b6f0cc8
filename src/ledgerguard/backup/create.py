"""`backup create`: a hot physical backup of the replica with `mariadb-backup`.

Taken from the **replica** so the primary does no extra work; `mariadb-backup` copies InnoDB
while the replica keeps applying, and its backup locks (`BACKUP STAGE`) give the GTID position
the copy is consistent at (`xtrabackup_binlog_info`). The copy is prepared at once (crash
recovery applied, so a restore is a plain file copy), each file compressed with zstd, its size
and SHA-256 recorded before and after in `manifest.json`, and the folder renamed into
`<backups>/base/<id>/` only when complete.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from ledgerguard.backup.catalog import BackupPaths
from ledgerguard.backup.errors import BackupError
from ledgerguard.backup.manifest import (
    DATA,
    SUFFIX,
    FileEntry,
    Manifest,
    fsync_tree,
    sha256_of,
)
from ledgerguard.backup.tools import find_tool, run_tool, write_option_file
from ledgerguard.cluster.admin import admin_connection, scalar
from ledgerguard.cluster.local import LocalCluster
from ledgerguard.cluster.spec import ServerSpec
from ledgerguard.db.dialect import VERSION_QUERY
from ledgerguard.settings import Settings
from ledgerguard.utc import as_utc

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    """Default progress sink."""


def backup_id(moment: datetime) -> str:
    """`20261129T101500Z`: sorts by time, safe in a path."""
    return as_utc(moment).strftime("%Y%m%dT%H%M%SZ")


def read_backup_gtid(datadir: Path) -> str:
    """The GTID position a prepared `mariadb-backup` copy contains.

    `xtrabackup_binlog_info` holds `<binlog file> <position> <GTID position>` of the backed-up
    server at the moment its commits were blocked; on our replica (log_slave_updates) that is
    the primary's GTIDs it had applied.
    """
    info = datadir / "xtrabackup_binlog_info"
    try:
        parts = info.read_text().split()
    except FileNotFoundError:
        raise BackupError(f"{info} is missing: mariadb-backup wrote no binlog position") from None
    if len(parts) < 3:
        raise BackupError(f"{info} holds no GTID position ({' '.join(parts)!r})")
    return parts[2]


def copy_server(
    spec: ServerSpec,
    *,
    password: str,
    target: Path,
    option_file: Path,
    log_file: Path,
) -> None:
    """`mariadb-backup --backup` of the running server `spec` into `target`, then `--prepare`."""
    tool = find_tool("mariadb-backup")
    write_option_file(
        option_file, "client", {"user": "root", "password": password, "socket": spec.socket}
    )
    try:
        run_tool(
            [
                tool,
                f"--defaults-file={option_file}",
                "--backup",
                f"--target-dir={target}",
                f"--datadir={spec.datadir}",
                "--slave-info",
                "--parallel=2",
            ],
            what=f"mariadb-backup --backup of the {spec.role} (log: {log_file})",
            log_file=log_file,
        )
    finally:
        option_file.unlink(missing_ok=True)
    run_tool(
        [tool, "--no-defaults", "--prepare", f"--target-dir={target}"],
        what=f"mariadb-backup --prepare (log: {log_file})",
        log_file=log_file,
    )


def compress_datadir(datadir: Path, *, level: int) -> list[FileEntry]:
    """Compress every file of `datadir` in place (`name` → `name.zst`), recording both sides."""
    zstd = find_tool("zstd")
    originals = sorted(p for p in datadir.rglob("*") if p.is_file())
    before = {p: (p.stat().st_size, sha256_of(p)) for p in originals}
    if originals:
        run_tool(
            [zstd, "-q", f"-{level}", "-T0", "--rm", *map(str, originals)],
            what="zstd compression of the backup",
        )
    entries = []
    for path in originals:
        stored = path.with_name(path.name + SUFFIX)
        size, digest = before[path]
        entries.append(
            FileEntry(
                path=str(path.relative_to(datadir)),
                size=size,
                sha256=digest,
                stored_size=stored.stat().st_size,
                stored_sha256=sha256_of(stored),
            )
        )
    return entries


def create_backup(settings: Settings, *, progress: Progress = _quiet) -> Manifest:
    """Back up the replica (see module docstring); returns the manifest of the new backup."""
    cluster = LocalCluster(settings)
    spec = cluster.specs["replica"]
    if not cluster.server("replica").is_running():
        raise BackupError(
            f"the replica ({spec.base_dir.name}, port {spec.port}) is not running: backups are "
            "taken from the replica; start it with `ledgerguard cluster up`"
        )
    paths = BackupPaths.of(settings)
    started = datetime.now(UTC)
    ident = backup_id(started)
    staging = paths.staging / ident
    final = paths.base / ident
    if final.exists():
        raise BackupError(f"{final} already exists: wait a second and try again")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        with admin_connection(spec, password=cluster.root_password) as conn:
            version = str(scalar(conn, VERSION_QUERY))
        progress(f"copying the replica {spec.base_dir.name}:{spec.port} with mariadb-backup")
        copy_server(
            spec,
            password=cluster.root_password,
            target=staging / DATA,
            option_file=paths.staging / f"{ident}.cnf",
            log_file=paths.logs / f"backup-{ident}.log",
        )
        gtid = read_backup_gtid(staging / DATA)
        finished = datetime.now(UTC)
        progress(f"prepared at GTID {gtid}; compressing with zstd")
        files = compress_datadir(staging / DATA, level=settings.backup_zstd_level)
        manifest = Manifest(
            id=ident,
            started_at=started,
            finished_at=finished,
            gtid=gtid,
            server_version=version,
            source=f"replica {spec.base_dir.name} 127.0.0.1:{spec.port}",
            tool="mariadb-backup",
            files=files,
        )
        manifest.write(staging)
        fsync_tree(staging)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.rename(staging, final)
        with contextlib.suppress(OSError):
            fd = os.open(final.parent, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    progress(
        f"backup {ident}: {len(files)} files, {manifest.size / 2**20:.1f} MiB → "
        f"{manifest.stored_size / 2**20:.1f} MiB stored"
    )
    return manifest
