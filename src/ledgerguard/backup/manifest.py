"""What a backup holds: the manifest written next to its files, and checking files against it.

A backup folder is `<backups>/base/<id>/` with `manifest.json` and `data/`, the prepared datadir
with every file compressed on its own (`<name>.zst`), so a damaged file is named and the rest
stays readable. The manifest records, per file, the size and SHA-256 of the original and of the
stored (compressed) copy; the folder appears under its final name only once complete
(written in `.staging/`, then renamed).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ledgerguard.backup.errors import BackupCorrupt
from ledgerguard.files import write_text_atomic

MANIFEST = "manifest.json"
DATA = "data"
SUFFIX = ".zst"
FORMAT = 1


def sha256_of(path: Path, *, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class FileEntry:
    """One datadir file: `path` relative to the datadir, original and stored size/checksum."""

    path: str
    size: int
    sha256: str
    stored_size: int
    stored_sha256: str

    @property
    def stored_path(self) -> str:
        return self.path + SUFFIX


@dataclass
class Manifest:
    """Everything known about one backup (the JSON of `manifest.json`)."""

    id: str
    started_at: datetime
    finished_at: datetime
    #: GTID position the backup contains (everything up to it, nothing after)
    gtid: str
    server_version: str
    source: str
    tool: str
    files: list[FileEntry] = field(default_factory=list)
    format: int = FORMAT
    #: `physical` (a prepared datadir) or `logical` (one dump; `ledgerguard.backup.logical`)
    method: str = "physical"

    @property
    def size(self) -> int:
        return sum(entry.size for entry in self.files)

    @property
    def stored_size(self) -> int:
        return sum(entry.stored_size for entry in self.files)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        data["finished_at"] = self.finished_at.isoformat()
        data["size"] = self.size
        data["stored_size"] = self.stored_size
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        return cls(
            id=data["id"],
            started_at=datetime.fromisoformat(data["started_at"]),
            finished_at=datetime.fromisoformat(data["finished_at"]),
            gtid=data["gtid"],
            server_version=data["server_version"],
            source=data["source"],
            tool=data["tool"],
            files=[FileEntry(**entry) for entry in data["files"]],
            format=data.get("format", FORMAT),
            method=data.get("method", "physical"),
        )

    def write(self, folder: Path) -> None:
        """Write `manifest.json` durably (fsynced) in `folder`."""
        write_text_atomic(folder / MANIFEST, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        path = folder / MANIFEST
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except FileNotFoundError:
            raise BackupCorrupt(f"{path} is missing: {folder} is not a complete backup") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise BackupCorrupt(f"{path} is unreadable ({exc}): the backup is damaged") from None


def check_stored_files(folder: Path, manifest: Manifest) -> None:
    """Every stored file exists with its recorded size and SHA-256, else `BackupCorrupt`
    naming each bad file (missing, truncated, changed)."""
    problems = []
    for entry in manifest.files:
        path = folder / DATA / entry.stored_path
        if not path.is_file():
            problems.append(f"{path}: missing")
            continue
        size = path.stat().st_size
        if size != entry.stored_size:
            problems.append(f"{path}: {size} bytes, the manifest says {entry.stored_size}")
        elif sha256_of(path) != entry.stored_sha256:
            problems.append(f"{path}: checksum differs from the manifest")
    if problems:
        raise BackupCorrupt(f"backup {manifest.id} is damaged: " + "; ".join(problems))


def fsync_tree(folder: Path) -> None:
    """Flush every file and folder under `folder` to disk (before the rename that publishes it)."""
    for root, _, names in os.walk(folder):
        for name in names:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fd = os.open(root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
