"""Prometheus metrics of backups and the binlog archive, computed at scrape time.

Served by the archiver process on `LEDGERGUARD_BACKUP_METRICS_PORT` (job `ledgerguard-backup`);
the alerts `BackupTooOld` and `BinlogArchiveLagging` read them. Values come from the files on
disk (the catalog, the newest archived event), so they are right whoever wrote them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ledgerguard.backup.archive import list_segments
from ledgerguard.backup.catalog import list_backups
from ledgerguard.errors import LedgerGuardError
from ledgerguard.settings import Settings


def newest_verified_finish(settings: Settings) -> datetime | None:
    """End time of the newest backup whose latest verification succeeded."""
    for backup in list_backups(settings):
        if backup.verified_at is not None:
            return backup.manifest.finished_at
    return None


def archive_last_event(settings: Settings) -> datetime | None:
    segments = list_segments(settings)
    return segments[-1].last_time() if segments else None


class BackupCollector(Collector):
    """Gauges read from the backup folder on every scrape."""

    def __init__(self, settings: Settings, *, streaming: Callable[[], bool]) -> None:
        self.settings = settings
        self.streaming = streaming

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = datetime.now(UTC)
        try:
            verified = newest_verified_finish(self.settings)
            backups = list_backups(self.settings)
        except LedgerGuardError:
            verified, backups = None, []
        newest = backups[0].manifest.finished_at if backups else None
        yield GaugeMetricFamily(
            "ledgerguard_backup_newest_verified_timestamp_seconds",
            "End time of the newest verified backup (0: none).",
            value=verified.timestamp() if verified else 0,
        )
        yield GaugeMetricFamily(
            "ledgerguard_backup_newest_verified_age_seconds",
            "Seconds since the newest verified backup ended (now if there is none: +Inf).",
            value=(now - verified).total_seconds() if verified else float("inf"),
        )
        yield GaugeMetricFamily(
            "ledgerguard_backup_newest_timestamp_seconds",
            "End time of the newest backup, verified or not (0: none).",
            value=newest.timestamp() if newest else 0,
        )
        yield GaugeMetricFamily(
            "ledgerguard_backup_count", "Complete backups in the catalog.", value=len(backups)
        )
        last = archive_last_event(self.settings)
        yield GaugeMetricFamily(
            "ledgerguard_binlog_archive_up",
            "1 while the binlog stream (mariadb-binlog / mysqlbinlog) copies the primary's binlog.",
            value=1 if self.streaming() else 0,
        )
        yield GaugeMetricFamily(
            "ledgerguard_binlog_archive_last_event_timestamp_seconds",
            "Time of the newest archived binlog event (0: nothing archived).",
            value=last.timestamp() if last else 0,
        )
        yield GaugeMetricFamily(
            "ledgerguard_binlog_archive_lag_seconds",
            "Seconds since the newest archived event; the primary's heartbeat commits every "
            "second, so this is the archive's lag behind the primary (+Inf: nothing archived).",
            value=max(0.0, (now - last).total_seconds()) if last else float("inf"),
        )
