"""`ledgerguard bench backup`: backup, verify and point-in-time restore times, and the binlog
archive's lag (the recovery point) under the ingest benchmark's load.

1. the benchmark data set (`ensure_dataset`, loaded once per size and seed);
2. `backup create` from the replica, timed, with its sizes; then `backup verify`, timed;
3. the ingest benchmark's API load (`run_ingest`, without the sysbench ceiling) while the
   archive's lag is sampled: every `interval` s the primary's binlog position (file, offset)
   and the archive's newest file size are read; the lag of a primary position is the time until
   the archive holds it (resolution: the sampling interval);
4. `restore --to-gtid <the primary's position after the load>`: the backup unpacked, then the
   load's transactions replayed from the archive, timed (the restored copy is deleted after).

Targets (issue #17): recovery point <= 5 s of committed transactions under the load; restore to
a point <= 10 min for 13.4M rows on this machine.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ledgerguard.backup.archive import list_segments, server_binlog_end
from ledgerguard.backup.archiver import archiver_pid, start_archiver, stop_archiver
from ledgerguard.backup.create import create_backup
from ledgerguard.backup.restore import restore, stop_restored
from ledgerguard.backup.verify import verify_backup
from ledgerguard.cluster.admin import admin_connection
from ledgerguard.cluster.local import LocalCluster
from ledgerguard.load.bench.analysis import ensure_dataset
from ledgerguard.load.bench.ingest import IngestOptions, run_ingest
from ledgerguard.settings import Settings

RPO_TARGET_SECONDS = 5.0
RESTORE_TARGET_SECONDS = 600.0


def _archive_end(settings: Settings) -> tuple[str, int] | None:
    """(newest archived file name, its size) of the newest segment."""
    segments = list_segments(settings)
    files = segments[-1].files if segments else []
    return (files[-1].name, files[-1].stat().st_size) if files else None


@dataclass
class ArchiveLagSampler:
    """Samples the primary's binlog end and the archive's end in a thread."""

    settings: Settings
    interval: float = 0.2
    primary: list[tuple[float, tuple[str, int]]] = field(default_factory=list)
    archive: list[tuple[float, tuple[str, int]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        cluster = LocalCluster(self.settings)
        with admin_connection(cluster.specs["primary"], password=cluster.root_password) as conn:
            while not self._stop.is_set():
                now = time.monotonic()
                end = server_binlog_end(conn)
                archived = _archive_end(self.settings)
                if end is not None:
                    self.primary.append((now, end))
                if archived is not None:
                    self.archive.append((now, archived))
                time.sleep(self.interval)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def lags(self) -> list[float]:
        """For each primary sample: seconds until the archive held that position."""
        lags = []
        position = 0
        for when, wanted in self.primary:
            while position < len(self.archive) and (
                self.archive[position][0] < when or self.archive[position][1] < wanted
            ):
                position += 1
            if position == len(self.archive):
                break
            lags.append(self.archive[position][0] - when)
        return lags


def _summary(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"samples": 0, "p50": None, "p99": None, "max": None}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)

    return {"samples": len(values), "p50": pick(0.5), "p99": pick(0.99), "max": pick(1.0)}


def bench_backup(
    settings: Settings,
    rows: int,
    *,
    seed: int = 7,
    start: date = date(2025, 1, 1),
    load_seconds: float = 30.0,
    users: int = 50,
    progress: Any = print,
) -> dict[str, Any]:
    """Run the benchmark (see module docstring) on the configured cluster; returns JSON-able."""
    load_before = os.getloadavg()
    cluster = LocalCluster(settings)
    cluster.up(progress=progress)
    _, dataset = ensure_dataset(settings, rows, seed=seed, start=start)
    cluster.wait_for_replica(timeout=600)
    started_archiver = archiver_pid(settings) is None
    start_archiver(settings)
    try:
        progress("backup create (from the replica)")
        began = time.monotonic()
        manifest = create_backup(settings, progress=progress)
        backup_seconds = time.monotonic() - began
        progress("backup verify")
        began = time.monotonic()
        verified = verify_backup(settings, backup_id=manifest.id, progress=progress)
        verify_seconds = time.monotonic() - began
        progress(f"ingest load for {load_seconds:g} s while sampling the archive's lag")
        sampler = ArchiveLagSampler(settings)
        sampler.start()
        try:
            ingest = run_ingest(
                settings,
                IngestOptions(duration=load_seconds, users=users, ceiling=False),
                progress=progress,
            )
        finally:
            time.sleep(2)  # let the archive's last samples in
            sampler.stop()
        lag = _summary(sampler.lags())
        target = cluster.primary_gtid()
        progress(f"restore --to-gtid {target}")
        began = time.monotonic()
        restored = restore(settings, to_gtid=target, progress=progress)
        restore_seconds = time.monotonic() - began
        stop_restored(settings, restored.folder)
        shutil.rmtree(restored.folder, ignore_errors=True)
    finally:
        if started_archiver:
            stop_archiver(settings)
    return {
        "benchmark": "backup",
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_before": [round(v, 2) for v in load_before],
            "loadavg_after": [round(v, 2) for v in os.getloadavg()],
        },
        "dataset": dataset,
        "backup": {
            "id": manifest.id,
            "seconds": round(backup_seconds, 1),
            "gtid": manifest.gtid,
            "files": len(manifest.files),
            "size_mib": round(manifest.size / 2**20, 1),
            "stored_mib": round(manifest.stored_size / 2**20, 1),
        },
        "verify": {"seconds": round(verify_seconds, 1), "rows": verified["rows"]},
        "archive_lag_under_load": lag
        | {
            "load_seconds": load_seconds,
            "ingest_tps": ingest["api"].get("tps"),
            "sample_interval_s": sampler.interval,
        },
        "restore_to_point": {
            "seconds": round(restore_seconds, 1),
            "unpack_seconds": restored.to_dict()["unpack_seconds"],
            "replay_seconds": restored.to_dict()["replay_seconds"],
            "backup_gtid": manifest.gtid,
            "to_gtid": target,
        },
        "targets": {
            "recovery_point_p99_le_5s": lag["p99"] is not None and lag["p99"] <= RPO_TARGET_SECONDS,
            "restore_le_10min": restore_seconds <= RESTORE_TARGET_SECONDS,
        },
    }
