"""`backup create`: a hot backup of the replica, physical (`mariadb-backup`) or logical (a dump).

Taken from the **replica** so the primary does no extra work, as the backup account (never
root). Physical (the default on MariaDB): `mariadb-backup` copies InnoDB while the replica
keeps applying, and its backup locks (`BACKUP STAGE`) give the GTID position the copy is
consistent at (`xtrabackup_binlog_info`); the copy is prepared at once (crash recovery applied,
so a restore is a plain file copy). Logical (the default on MySQL, `LEDGERGUARD_BACKUP_METHOD`):
one consistent dump whose head records its GTID position (`ledgerguard.backup.logical`). Either
way each file is compressed with zstd, its size and SHA-256 recorded before and after in
`manifest.json`, and the folder renamed into `<backups>/base/<id>/` only when complete.
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
from ledgerguard.backup.logical import (
    DUMP_FILE,
    DUMP_TOOL,
    LOGICAL,
    backup_method,
    dump_command,
    dump_to_file,
    dumped_databases,
    read_dump_position,
)
from ledgerguard.backup.manifest import (
    DATA,
    SUFFIX,
    FileEntry,
    Manifest,
    fsync_tree,
    sha256_of,
)
from ledgerguard.backup.tools import backup_login, find_tool, run_tool, write_option_file
from ledgerguard.cluster.admin import admin_connection, reach, scalar
from ledgerguard.cluster.errors import ClusterError
from ledgerguard.cluster.local import LocalCluster
from ledgerguard.cluster.spec import ServerSpec
from ledgerguard.db.dialect import VERSION_QUERY, Flavour, detect_flavour
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
    user: str,
    password: str,
    target: Path,
    option_file: Path,
    log_file: Path,
) -> None:
    """`mariadb-backup --backup` of the running server `spec` into `target`, then `--prepare`."""
    tool = find_tool("mariadb-backup")
    write_option_file(
        option_file, "client", {"user": user, "password": password, "socket": spec.socket}
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


def dump_server(
    settings: Settings,
    spec: ServerSpec,
    *,
    flavour: Flavour,
    target: Path,
    option_file: Path,
    log_file: Path,
) -> None:
    """A logical backup (`ledgerguard.backup.logical`) of `spec` into `target/dump.sql`, over
    TCP as the backup account (works for a server in another container as well)."""
    write_option_file(
        option_file, "client", {**backup_login(settings), "host": spec.host, "port": spec.port}
    )
    try:
        dump_to_file(
            dump_command(
                flavour,
                tool=find_tool(DUMP_TOOL[flavour]),
                option_file=option_file,
                databases=dumped_databases(settings),
            ),
            target=target / DUMP_FILE,
            log_file=log_file,
        )
    finally:
        option_file.unlink(missing_ok=True)


def create_backup(settings: Settings, *, progress: Progress = _quiet) -> Manifest:
    """Back up the replica (see module docstring); returns the manifest of the new backup.

    The method is `LEDGERGUARD_BACKUP_METHOD`, by default physical on MariaDB and logical on
    MySQL (`ledgerguard.backup.logical.backup_method`).
    """
    cluster = LocalCluster(settings)
    spec = cluster.specs["replica"]
    paths = BackupPaths.of(settings)
    started = datetime.now(UTC)
    ident = backup_id(started)
    staging = paths.staging / ident
    final = paths.base / ident
    if final.exists():
        raise BackupError(f"{final} already exists: wait a second and try again")
    try:
        with admin_connection(reach(spec), **backup_login(settings), connect_timeout=5) as conn:
            version = str(scalar(conn, VERSION_QUERY))
    except ClusterError as exc:
        raise BackupError(
            f"the replica ({spec.base_dir.name}, port {spec.port}) does not answer: backups are "
            f"taken from the replica; start it with `ledgerguard cluster up` ({exc})"
        ) from exc
    flavour = detect_flavour(version)
    method = backup_method(settings, flavour)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        if method == LOGICAL:
            tool = DUMP_TOOL[flavour]
            progress(f"dumping the replica {spec.base_dir.name}:{spec.port} with {tool}")
            dump_server(
                settings,
                spec,
                flavour=flavour,
                target=staging / DATA,
                option_file=paths.staging / f"{ident}.cnf",
                log_file=paths.logs / f"backup-{ident}.log",
            )
            gtid = read_dump_position(flavour, staging / DATA / DUMP_FILE)
        else:
            tool = "mariadb-backup"
            progress(f"copying the replica {spec.base_dir.name}:{spec.port} with mariadb-backup")
            copy_server(
                spec,
                **backup_login(settings),
                target=staging / DATA,
                option_file=paths.staging / f"{ident}.cnf",
                log_file=paths.logs / f"backup-{ident}.log",
            )
            gtid = read_backup_gtid(staging / DATA)
        finished = datetime.now(UTC)
        progress(f"{method} backup at GTID {gtid}; compressing with zstd")
        files = compress_datadir(staging / DATA, level=settings.backup_zstd_level)
        manifest = Manifest(
            id=ident,
            started_at=started,
            finished_at=finished,
            gtid=gtid,
            server_version=version,
            source=f"replica {spec.base_dir.name} {spec.host}:{spec.port}",
            tool=tool,
            files=files,
            method=method,
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
