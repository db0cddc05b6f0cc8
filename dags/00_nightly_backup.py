"""00_nightly_backup: hot backup of the replica, then verify it, then apply retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import CronDataIntervalTimetable, dag, task


@dag(
    dag_id="00_nightly_backup",
    schedule=CronDataIntervalTimetable("30 1 * * *", timezone="UTC"),
    start_date=datetime(2020, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["ledgerguard", "backup"],
    default_args={"retries": 1, "retry_delay": timedelta(minutes=10)},
)
def nightly_backup() -> None:
    """
    ### Nightly backup, verified

    1. `backup`: a hot physical backup of the **replica** with `mariadb-backup` (the primary
       does no extra work), prepared, zstd-compressed, with a manifest (GTID position, sizes and
       SHA-256 of every file) under `LEDGERGUARD_BACKUP_DIR`. A backup started after the data
       interval's end (an earlier try of this run) is reused, so retries and cleared runs do
       not pile up backups.
    2. `verify`: restores that backup into a scratch server on a free port and compares every
       table chunk by chunk with the replica at the same GTID; a damaged file or a difference
       fails the run (and the alert `BackupTooOld` fires when no backup was verified for 26 h).
    3. `prune`: keeps `LEDGERGUARD_BACKUP_KEEP_DAILY` daily and `_WEEKLY` weekly backups and the
       archived binlogs back to the oldest kept one.

    Point-in-time recovery needs the binlog archive as well (`ledgerguard backup archive up`,
    started by `ledgerguard up`). Unlike the analytics DAGs, a backup is of the data as it is
    when the task runs, not of the data interval; the interval only names the night.
    """

    @task
    def backup(data_interval_end: datetime | None = None) -> dict[str, Any]:
        """Back up the replica (or reuse tonight's backup); returns its id and GTID."""
        from ledgerguard.orchestration.tasks import nightly_backup as take_backup

        assert data_interval_end is not None
        return take_backup(interval_end=data_interval_end)

    @task
    def verify(taken: dict[str, Any]) -> dict[str, Any]:
        """Restore the backup into a scratch server and compare it with the replica."""
        from ledgerguard.orchestration.tasks import verify_nightly_backup

        return verify_nightly_backup(backup_id=taken["backup"])

    @task
    def prune(verified: dict[str, Any]) -> dict[str, Any]:
        """Apply retention to backups and archived binlogs (only after a verified backup)."""
        from ledgerguard.orchestration.tasks import prune_backups

        return prune_backups()

    prune(verify(backup()))


nightly_backup()
