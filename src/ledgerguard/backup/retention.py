"""`backup prune`: keep the newest backup of each of N days and M ISO weeks, and the binlogs
back to the oldest kept backup.

Rules (grandfather-father-son, UTC calendar):

* the newest backup of each of the `backup_keep_daily` most recent days that have backups;
* the newest backup of each of the `backup_keep_weekly` most recent ISO weeks with backups;
* always the newest backup and the newest verified one;
* archived binlogs: everything a restore from the oldest kept backup needs (from the file its
  replay starts in, see `ledgerguard.backup.plan`); earlier files and segments go.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from typing import Any

from ledgerguard.backup.archive import chain_start, list_segments
from ledgerguard.backup.binlog_file import parse_position
from ledgerguard.backup.catalog import BackupInfo, list_backups
from ledgerguard.settings import Settings


@dataclass
class PrunePlan:
    keep: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    delete_binlogs: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"keep": self.keep, "delete": self.delete, "delete_binlogs": self.delete_binlogs}


def backups_to_keep(backups: list[BackupInfo], *, daily: int, weekly: int) -> set[str]:
    """Ids kept by the rules above (`backups` newest first)."""
    keep: set[str] = set()
    days: list[object] = []
    weeks: list[object] = []
    for backup in backups:
        moment = backup.manifest.finished_at
        day, week = moment.date(), moment.isocalendar()[:2]
        if day not in days:
            days.append(day)
            if len(days) <= daily:
                keep.add(backup.id)
        if week not in weeks:
            weeks.append(week)
            if len(weeks) <= weekly:
                keep.add(backup.id)
    if backups:
        keep.add(backups[0].id)
    verified = next((b for b in backups if b.verified_at is not None), None)
    if verified is not None:
        keep.add(verified.id)
    return keep


def plan_prune(settings: Settings) -> PrunePlan:
    backups = list_backups(settings)
    keep = backups_to_keep(
        backups, daily=settings.backup_keep_daily, weekly=settings.backup_keep_weekly
    )
    plan = PrunePlan(
        keep=[b.id for b in backups if b.id in keep],
        delete=[b.id for b in backups if b.id not in keep],
    )
    kept = [b for b in backups if b.id in keep]
    segments = list_segments(settings)
    if not kept or not segments:
        return plan
    oldest = parse_position(kept[-1].manifest.gtid)
    first = chain_start(segments, oldest)
    if first is None:
        return plan  # the oldest kept backup is not covered: keep every binlog
    for segment in segments[:first]:
        plan.delete_binlogs.append(str(segment.folder))
    segment = segments[first]
    for path in segment.files[: segment.file_for(oldest)]:
        plan.delete_binlogs.append(str(path))
    return plan


def prune(settings: Settings, *, dry_run: bool = False) -> PrunePlan:
    """Delete what `plan_prune` lists (nothing with `dry_run`); returns the plan."""
    plan = plan_prune(settings)
    if dry_run:
        return plan
    by_id = {b.id: b for b in list_backups(settings)}
    for ident in plan.delete:
        shutil.rmtree(by_id[ident].folder)
    for name in plan.delete_binlogs:
        path = settings.backups_root / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    return plan
