"""What a point-in-time restore replays: the recovery window and the plan, read from the files.

Step 1 of `ledgerguard.backup.restore`, kept apart because it only *reads* the backup catalog
and the binlog archive and starts nothing: `ledgerguard backup list` shows the window without
a server, a refused restore (a target outside the window, a gap in the archive) fails here
before any folder is made, and the plan's rules are tested on archive folders alone.

The plan: the newest backup at or before the target (by its end time, or by its GTID position
for `--to-gtid`) from which the archive runs without gap to the target, and for each archive
segment the files to replay, from the GTID position reached so far (exclusive) up to where the
next segment starts or the target, whichever is first. A target outside what the backups and
the archive cover is refused with the covered range.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ledgerguard.backup.archive import Segment, chain_start, list_segments
from ledgerguard.backup.binlog_file import covers, format_position, parse_position
from ledgerguard.backup.catalog import BackupInfo, list_backups
from ledgerguard.backup.errors import NoBackup, OutsideRecoveryWindow
from ledgerguard.db.gtid import GtidSet
from ledgerguard.settings import Settings
from ledgerguard.utc import as_utc


@dataclass
class ReplayStep:
    """Replay `files` of one segment after GTID position `start`, up to `stop_gtid`/`stop_time`."""

    segment: str
    files: list[Path]
    start: str
    stop_gtid: str | None
    stop_time: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "segment": self.segment,
            "files": [p.name for p in self.files],
            "start": self.start,
            "stop_gtid": self.stop_gtid,
            "stop_time": self.stop_time.isoformat() if self.stop_time else None,
        }


@dataclass
class RestorePlan:
    backup: BackupInfo
    to_time: datetime | None
    to_gtid: str | None
    steps: list[ReplayStep] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "backup": self.backup.id,
            "backup_gtid": self.backup.manifest.gtid,
            "to_time": self.to_time.isoformat() if self.to_time else None,
            "to_gtid": self.to_gtid,
            "replay": [step.to_dict() for step in self.steps],
        }


def _gap_in_chain(segments: list[Segment], first: int) -> str | None:
    for number in range(first, len(segments) - 1):
        following = segments[number + 1]
        if following.gap_before or not covers(segments[number].end_state, following.start_state):
            return (
                f"the binlog archive has a gap between {segments[number].folder.name} (ends at "
                f"{format_position(segments[number].end_state)}) and {following.folder.name} "
                f"(starts at {following.start})"
            )
    return None


def recovery_window(settings: Settings) -> dict[str, Any]:
    """The earliest and latest restorable points (time and GTID), as far as the files show."""
    backups = list_backups(settings)
    segments = list_segments(settings)
    usable = [
        b for b in backups if chain_start(segments, parse_position(b.manifest.gtid)) is not None
    ]
    earliest = usable[-1] if usable else None
    last_time = segments[-1].last_time() if segments else None
    return {
        "from_time": earliest.manifest.finished_at.isoformat() if earliest else None,
        "from_gtid": earliest.manifest.gtid if earliest else None,
        "to_time": last_time.isoformat() if last_time else None,
        "to_gtid": format_position(segments[-1].end_state) if segments else None,
        "backups": len(backups),
        "segments": len(segments),
    }


def _window_text(window: dict[str, Any]) -> str:
    if window["from_time"] is None:
        return (
            f"nothing is restorable yet ({window['backups']} backup(s), "
            f"{window['segments']} archive segment(s)): a backup is restorable once the binlog "
            "archive holds everything after its GTID position (`ledgerguard backup archive up`)"
        )
    return (
        f"the backups and the binlog archive cover {window['from_time']} "
        f"(GTID {window['from_gtid']}) to {window['to_time']} (GTID {window['to_gtid']})"
    )


def plan_restore(
    settings: Settings, *, to_time: datetime | None = None, to_gtid: str | None = None
) -> RestorePlan:
    """What a restore to `to_time` or `to_gtid` (exactly one) replays; refused outside the window."""
    if (to_time is None) == (to_gtid is None):
        raise ValueError("give exactly one of to_time and to_gtid")
    if to_time is not None:
        to_time = as_utc(to_time)  # naive: ValueError
    segments = list_segments(settings)
    backups = list_backups(settings)
    if not backups:
        raise NoBackup("no backup exists: take one with `ledgerguard backup create`")
    window = recovery_window(settings)
    target = parse_position(to_gtid) if to_gtid is not None else None
    archive_end = segments[-1].end_state if segments else GtidSet()
    last_time = segments[-1].last_time() if segments else None
    wanted = to_time.isoformat() if to_time else f"GTID {to_gtid}"
    if (target is not None and not covers(archive_end, target)) or (
        to_time is not None and (last_time is None or to_time > last_time)
    ):
        raise OutsideRecoveryWindow(
            f"{wanted} is later than the newest archived transaction; {_window_text(window)}"
        )
    for backup in backups:  # newest first
        position = parse_position(backup.manifest.gtid)
        if to_time is not None and backup.manifest.finished_at > to_time:
            continue
        if target is not None and not covers(target, position):
            continue
        first = chain_start(segments, position)
        if first is None:
            continue
        gap = _gap_in_chain(segments, first)
        if gap:
            raise OutsideRecoveryWindow(f"cannot reach {wanted}: {gap}; {_window_text(window)}")
        plan = RestorePlan(backup=backup, to_time=to_time, to_gtid=to_gtid)
        current = position
        for number in range(first, len(segments)):
            segment = segments[number]
            following = segments[number + 1].start_state if number + 1 < len(segments) else None
            if following is not None and covers(current, following):
                continue  # the next segment starts at or before where we are
            stop = following
            if target is not None and (stop is None or covers(stop, target)):
                stop = target
            if stop is not None and covers(current, stop):
                break  # the backup already holds the target
            plan.steps.append(
                ReplayStep(
                    segment=segment.folder.name,
                    files=segment.files[segment.file_for(current) :],
                    start=format_position(current),
                    stop_gtid=format_position(stop) if stop else None,
                    stop_time=to_time,
                )
            )
            if stop is None or stop is target:
                break
            current = stop
        return plan
    raise OutsideRecoveryWindow(
        f"{wanted} is earlier than every usable backup; {_window_text(window)}"
    )
