"""`backup verify`: prove a backup restores, by restoring it and comparing it with the replica.

1. every stored file is checked against the manifest (size, SHA-256): a missing, truncated or
   changed file fails here, named;
2. the backup is unpacked into a scratch datadir (each file's content checked again after
   zstd) and a `mariadbd` started on it on a free port; a logical backup is loaded into a new
   one instead, or, with `LEDGERGUARD_BACKUP_SCRATCH_HOST` (Compose), into that external empty
   server (`ledgerguard.backup.external`), which is emptied again afterwards;
3. the scratch server, which starts at the backup's GTID position, replicates from the
   **replica** (never the primary) and its tables are compared with the replica's chunk by
   chunk, each chunk at the same GTID (`ledgerguard.cluster.checksum.compare_tables`, the
   `cluster checksum` code). Rows the backup lacks or holds wrongly show up as differences;
   a backup whose position is wrong breaks replication, which fails with the replica's error.

The result is recorded next to the backup (`verified.json`) and the scratch folder deleted.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledgerguard.backup.catalog import BackupInfo, BackupPaths, find_backup, write_mark
from ledgerguard.backup.errors import BackupCorrupt, BackupError
from ledgerguard.backup.external import (
    ExternalScratch,
    claim_scratch,
    external_scratch,
    release_scratch,
)
from ledgerguard.backup.logical import LOGICAL, load_logical_backup, start_logical_copy
from ledgerguard.backup.manifest import check_stored_files
from ledgerguard.backup.scratch import (
    SCRATCH_SERVER_ID,
    scratch_spec,
    start_with_one_time_root,
    unpack_backup,
)
from ledgerguard.backup.tools import backup_login
from ledgerguard.cluster.admin import Endpoint, admin_connection, reach, run
from ledgerguard.cluster.checksum import compare_tables
from ledgerguard.cluster.errors import ClusterError
from ledgerguard.cluster.local import LocalCluster
from ledgerguard.cluster.replica import executed_gtids, flavour_of, wait_until_applied
from ledgerguard.cluster.replication import point_replica_at, start_replica
from ledgerguard.cluster.spec import ServerSpec
from ledgerguard.db.dialect import Flavour
from ledgerguard.files import private_dir
from ledgerguard.settings import Settings

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    """Default progress sink."""


def verify_backup(
    settings: Settings,
    *,
    backup_id: str | None = None,
    chunk_size: int = 10_000,
    catch_up_timeout: float = 600.0,
    progress: Progress = _quiet,
) -> dict[str, Any]:
    """Verify the backup `backup_id` (default: the newest); returns the recorded result.

    Raises `BackupCorrupt` for a damaged file and `BackupError` when the restored copy differs
    from the replica; both are recorded as a failed verification first.
    """
    backup = find_backup(settings, backup_id)
    cluster = LocalCluster(settings)
    replica = cluster.specs["replica"]
    login = backup_login(settings)
    started = time.monotonic()
    result: dict[str, Any] = {
        "backup": backup.id,
        "method": backup.manifest.method,
        "gtid": backup.manifest.gtid,
        "verified_at": datetime.now(UTC).isoformat(),
        "ok": False,
    }
    scratch_dir = private_dir(BackupPaths.of(settings).root / ".verify") / backup.id
    shutil.rmtree(scratch_dir, ignore_errors=True)
    server = None
    password = ""
    external = external_scratch(settings)
    claimed: Flavour | None = None
    try:
        progress(f"checking {len(backup.manifest.files)} stored files of {backup.id}")
        check_stored_files(backup.folder, backup.manifest)
        target: ServerSpec | Endpoint
        if external is not None:
            claimed = _load_into_external(settings, backup, external, scratch_dir, progress)
            target, user, password = external.endpoint, external.user, external.password
        else:
            spec = scratch_spec(
                settings,
                scratch_dir,
                role="replica",
                server_id=SCRATCH_SERVER_ID,
                one_time_root=True,
            )
            if backup.manifest.method == LOGICAL:
                progress(f"loading the dump into a new server in {spec.datadir}")
                server, password = start_logical_copy(settings, backup, spec)
            else:
                progress(f"unpacking into {spec.datadir}")
                unpack_backup(backup.folder, backup.manifest, spec.datadir)
                server, password = start_with_one_time_root(settings, spec, fresh=False)
            target, user = spec, "root"
            progress(f"scratch server up on {spec.socket}; it replicates from the replica")
        with (
            admin_connection(target, user=user, password=password) as scratch,
            admin_connection(reach(replica), **login) as source,
        ):
            flavour = flavour_of(scratch)
            run(
                scratch,
                point_replica_at(
                    flavour,
                    host=replica.host,
                    port=replica.port,
                    connect_retry=1,
                    **login,
                ),
            )
            run(scratch, start_replica(flavour))
            wait_until_applied(scratch, executed_gtids(source), timeout=catch_up_timeout)
            progress("comparing tables chunk by chunk with the replica")
            report = compare_tables(
                source, scratch, schema=settings.database, chunk_size=chunk_size
            )
            compared_at = executed_gtids(source)
        result |= {
            "compared_at_gtid": compared_at,
            "tables": report.tables,
            "rows": report.rows,
            "differences": report.to_dict()["differences"],
            "ok": report.clean,
        }
        if not report.clean:
            raise BackupError(
                f"backup {backup.id} differs from the replica in {len(report.differences)} "
                f"chunk(s): {report.to_dict()['differences'][:3]}"
            )
    except (BackupError, BackupCorrupt, ClusterError) as exc:
        result["error"] = str(exc)
        raise
    finally:
        result["seconds"] = round(time.monotonic() - started, 1)
        write_mark(backup.folder, result)
        if external is not None and claimed is not None:
            with contextlib.suppress(ClusterError, BackupError):
                release_scratch(settings, external, claimed)  # the next verify wipes it anyway
        if server is not None:
            try:
                server.stop(root_password=password)
            except ClusterError:
                server.kill()
        shutil.rmtree(scratch_dir, ignore_errors=True)
    progress(f"backup {backup.id} verified: {result['rows']} rows identical to the replica")
    return result


def _load_into_external(
    settings: Settings,
    backup: BackupInfo,
    external: ExternalScratch,
    work_dir: Path,
    progress: Progress,
) -> Flavour:
    """Empty the external scratch server and load the (logical) backup into it."""
    if backup.manifest.method != LOGICAL:
        raise BackupError(
            f"backup {backup.id} is {backup.manifest.method}: an external scratch server "
            "(LEDGERGUARD_BACKUP_SCRATCH_HOST) loads logical backups only; unset it to verify "
            "physical backups with a local scratch server"
        )
    progress(f"emptying the scratch server {external.address}")
    flavour = claim_scratch(settings, external)
    progress(f"loading the dump into the scratch server {external.address}")
    work_dir.mkdir(parents=True, exist_ok=True)
    load_logical_backup(
        backup, work_dir=work_dir, client=external.client_options, target=external.endpoint
    )
    progress(f"scratch server {external.address} loaded; it replicates from the replica")
    return flavour
