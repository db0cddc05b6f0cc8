"""`restore --replace`: make a restored folder the cluster, keeping the old one aside.

Refused while the API runs (it would write into a cluster being swapped). Nothing is deleted:
the cluster's `primary/` and `replica/` folders move to `<home>/replaced-<time>/`. The restored
datadir becomes the primary, a copy of it the replica (same binlogs, so `cluster up` points it
at the primary from the same GTID position), and the binlog archive's current segment is closed
so the archive starts a new one at the restored position (`restore` flushed the binlog there).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from ledgerguard.backup.archive import close_current_segment
from ledgerguard.backup.errors import RestoreRefused
from ledgerguard.backup.restore import RESTORE_INFO, restore_folder_spec, stop_restored
from ledgerguard.cluster.errors import ClusterError
from ledgerguard.cluster.local import LocalCluster
from ledgerguard.db.topology import RecordedTopology, load_topology, save_topology
from ledgerguard.settings import Settings

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    """Default progress sink."""


def external_replace_refusal(settings: Settings) -> str | None:
    """Why `--replace` cannot run here, or None: with an external scratch server (Compose) the
    cluster's servers are other containers whose datadirs this process cannot swap."""
    if not settings.backup_scratch_host.strip():
        return None
    return (
        "--replace is refused with an external scratch server (LEDGERGUARD_BACKUP_SCRATCH_HOST="
        f"{settings.backup_scratch_host}): the cluster's servers are other containers, whose "
        "data this command cannot swap. Restore without --replace, check the data on the "
        'scratch server, then follow the manual procedure in README "Compose (MySQL 8.4): what '
        'differs" (stop the writers, dump the scratch server with mysqldump --set-gtid-purged='
        "ON, RESET BINARY LOGS AND GTIDS and load it on the primary, re-provision the replica)"
    )


def _relocate_binlogs(datadir: Path) -> None:
    """Point the binlog index at the files' new place (it holds absolute paths)."""
    index = datadir / "mariadb-bin.index"
    if index.exists():
        names = [Path(line).name for line in index.read_text().splitlines() if line.strip()]
        index.write_text("".join(f"{datadir / name}\n" for name in names))


def replace_cluster(
    settings: Settings,
    folder: Path,
    *,
    api_running: bool,
    progress: Progress = _quiet,
) -> Path:
    """Make the restored server of `folder` the cluster; returns where the old one was moved.

    Refused while the API runs (it would write into a cluster being swapped). The cluster is
    stopped, its `primary/` and `replica/` folders moved to `<home>/replaced-<time>/` (nothing is
    deleted), the restored datadir becomes the primary and a copy of it the replica, which
    `cluster up` then points at the primary by GTID.
    """
    if api_running:
        raise RestoreRefused(
            "the API is running: stop it first (`ledgerguard api stop`), then --replace"
        )
    folder = folder.resolve()
    source = restore_folder_spec(settings, folder).datadir
    if not (folder / RESTORE_INFO).exists() or not source.is_dir():
        raise RestoreRefused(f"{folder} is not a completed restore folder")
    stop_restored(settings, folder)
    close_current_segment(settings)
    cluster = LocalCluster(settings)
    progress("stopping the cluster")
    try:
        cluster.down(progress=progress)
    except ClusterError:
        for role in ("replica", "primary"):
            cluster.server(role).kill()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = settings.state_dir / f"replaced-{stamp}"
    aside.mkdir(parents=True)
    for name in ("primary", "replica"):
        if (settings.state_dir / name).exists():
            os.rename(settings.state_dir / name, aside / name)
    progress(f"the old cluster's folders are kept in {aside}")
    primary_data = settings.state_dir / "primary" / "data"
    replica_data = settings.state_dir / "replica" / "data"
    primary_data.parent.mkdir(parents=True)
    replica_data.parent.mkdir(parents=True)
    shutil.move(str(source), str(primary_data))
    shutil.copytree(primary_data, replica_data)
    for datadir in (primary_data, replica_data):
        _relocate_binlogs(datadir)
    # the restored data is the primary again; a new epoch tells the API and the archiver
    save_topology(
        settings, RecordedTopology(swapped=False, epoch=load_topology(settings).epoch + 1)
    )
    progress("restored data in place; starting the cluster")
    LocalCluster(settings).up(progress=progress)
    return aside
