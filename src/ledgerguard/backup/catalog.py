"""Where backups live and which exist: `<backups>/base/<id>/`, newest first, with verify marks.

A backup counts only once its folder has its final name (creation renames a complete folder
from `.staging/`), so a crash mid-backup never shows up here. `verify` leaves `verified.json`
in the folder; it is not part of the manifest (a backup is immutable, its verification is not).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ledgerguard.backup.errors import BackupCorrupt, NoBackup
from ledgerguard.backup.manifest import Manifest
from ledgerguard.files import write_text_atomic
from ledgerguard.settings import Settings

VERIFIED = "verified.json"


@dataclass(frozen=True)
class BackupPaths:
    """The folders of one backup root."""

    root: Path

    @classmethod
    def of(cls, settings: Settings) -> BackupPaths:
        return cls(settings.backups_root)

    @property
    def base(self) -> Path:
        return self.root / "base"

    @property
    def staging(self) -> Path:
        return self.root / ".staging"

    @property
    def binlogs(self) -> Path:
        return self.root / "binlogs"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        """Pid files and option files of the archiver."""
        return self.root / "run"


@dataclass
class BackupInfo:
    """A backup in the catalog: its manifest, folder and latest verification (if any)."""

    folder: Path
    manifest: Manifest
    verified: dict[str, Any] | None

    @property
    def id(self) -> str:
        return self.manifest.id

    @property
    def verified_at(self) -> datetime | None:
        if not self.verified or not self.verified.get("ok"):
            return None
        return datetime.fromisoformat(self.verified["verified_at"])

    def to_dict(self) -> dict[str, Any]:
        manifest = self.manifest.to_dict()
        manifest.pop("files")
        return manifest | {
            "folder": str(self.folder),
            "files": len(self.manifest.files),
            "verified": self.verified,
        }


def list_backups(settings: Settings) -> list[BackupInfo]:
    """Every complete backup, newest first; unreadable folders raise `BackupCorrupt`."""
    base = BackupPaths.of(settings).base
    if not base.is_dir():
        return []
    backups = []
    for folder in sorted(base.iterdir(), reverse=True):
        if not folder.is_dir():
            continue
        backups.append(
            BackupInfo(folder=folder, manifest=Manifest.read(folder), verified=read_mark(folder))
        )
    return backups


def find_backup(settings: Settings, backup_id: str | None = None) -> BackupInfo:
    """The backup `backup_id`, or the newest one; `NoBackup` when there is none."""
    backups = list_backups(settings)
    if not backups:
        raise NoBackup(
            f"no backup in {BackupPaths.of(settings).base}: take one with `ledgerguard backup create`"
        )
    if backup_id is None:
        return backups[0]
    for backup in backups:
        if backup.id == backup_id:
            return backup
    raise NoBackup(f"no backup {backup_id!r}; there are: {', '.join(b.id for b in backups)}")


def read_mark(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / VERIFIED).read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        raise BackupCorrupt(f"{folder / VERIFIED} is unreadable") from None


def write_mark(folder: Path, result: dict[str, Any]) -> None:
    """Record a verification result atomically."""
    write_text_atomic(folder / VERIFIED, json.dumps(result, indent=2, default=str) + "\n")
