"""The scorer's status file: what `ledgerguard status`, `ledgerguard up` and the benchmarks know
of a running scorer.

Once a second the scorer writes its partition's `ScorerStatus` (streaming or waiting, its
position, its lag in transactions and seconds, counts, the last error) as JSON to
`<state dir>/scorer/status-K-of-N.json`; `write_status` writes it aside and renames it into
place, so a reader never sees half a file, and `read_status` gives it back (None while there
is none, or none readable).

Its own module because its readers are other processes: `process.start_scorer` waits on it,
`monitoring.stack` shows it, `bench realtime` polls it; none of them should import the
scorer's loop (the fraud engine, the binlog client) to read a small JSON file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledgerguard.realtime.partition import Partition
from ledgerguard.settings import Settings


def status_file(settings: Settings, partition: Partition) -> Path:
    return settings.state_dir / "scorer" / f"status-{partition.index}-of-{partition.count}.json"


@dataclass
class ScorerStatus:
    """What `ledgerguard status` shows; written as JSON once a second."""

    partition: str
    state: str = "starting"  # starting / running / waiting for the replica
    connected: bool = False
    position: str = ""
    lag_transactions: int | None = None
    lag_seconds: float | None = None
    scored: int = 0
    #: verdicts changed after their first (a burst or structuring group that grew)
    revised: int = 0
    users: int = 0
    reconnects: int = 0
    last_error: str = ""
    #: The approved parameter set scored with (None: the settings alone).
    parameter_set: int | None = None
    updated_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def write_status(path: Path, status: ScorerStatus) -> None:
    """`status` as the file at `path`, replaced whole: written aside, then renamed into place,
    so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(status.to_dict()))
    tmp.replace(path)


def read_status(settings: Settings, partition: Partition) -> dict[str, Any] | None:
    try:
        return json.loads(status_file(settings, partition).read_text())
    except (OSError, ValueError):
        return None
