"""Reading archived binlog files (MariaDB binlog format v4) without a server.

The archive must answer a few questions cheaply and without a running server: which GTIDs a
file holds (restore ranges, "no gap" checks), the GTID state a file starts from (its
`Gtid_list` event: where a segment begins), and when its last event was written (the archive's
lag). Only event headers and the GTID events' first bytes are read; `mariadb-binlog` replays.

Layout: a 4-byte magic, then events, each with a 19-byte header (timestamp u32, type u8,
server_id u32, event_size u32, end position u32, flags u16), little-endian. A GTID event's body
starts with seq_no u64 and domain_id u32; a Gtid_list event's with a count u32 (low 28 bits)
followed by (domain u32, server u32, seq u64) triples.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

MAGIC = b"\xfebin"
HEADER = struct.Struct("<IBIIIH")
GTID_EVENT = 162
GTID_LIST_EVENT = 163
#: How far from its end a file is searched for its last complete event.
TAIL_SEARCH_BYTES = 1 << 20


@dataclass(frozen=True, order=True)
class Gtid:
    """One MariaDB GTID, `domain-server-seq`."""

    domain: int
    server: int
    seq: int

    def __str__(self) -> str:
        return f"{self.domain}-{self.server}-{self.seq}"

    @classmethod
    def parse(cls, text: str) -> Gtid:
        domain, server, seq = (int(part) for part in text.strip().split("-"))
        return cls(domain, server, seq)


def parse_position(text: str) -> dict[int, Gtid]:
    """`0-1-5,1-2-9` → {domain: GTID}; the empty string is the empty position."""
    position: dict[int, Gtid] = {}
    for part in text.replace("\n", "").split(","):
        if part.strip():
            gtid = Gtid.parse(part)
            position[gtid.domain] = gtid
    return position


def format_position(position: dict[int, Gtid]) -> str:
    return ",".join(str(position[domain]) for domain in sorted(position))


def covers(position: dict[int, Gtid], target: dict[int, Gtid]) -> bool:
    """Whether `position` has reached `target` in every domain of `target`."""
    return all(
        domain in position and position[domain].seq >= gtid.seq for domain, gtid in target.items()
    )


@dataclass
class BinlogSummary:
    """What one archived file holds."""

    path: Path
    start_state: dict[int, Gtid] = field(default_factory=dict)
    gtids: list[Gtid] = field(default_factory=list)
    first_time: datetime | None = None
    last_time: datetime | None = None
    complete: bool = True  # ends exactly at an event boundary

    @property
    def end_state(self) -> dict[int, Gtid]:
        state = dict(self.start_state)
        for gtid in self.gtids:
            state[gtid.domain] = gtid
        return state


def _events(handle, size: int, start: int = 4) -> Iterator[tuple[int, tuple[int, ...]]]:
    offset = start
    while offset + HEADER.size <= size:
        handle.seek(offset)
        header = HEADER.unpack(handle.read(HEADER.size))
        event_size = header[3]
        if event_size < HEADER.size or offset + event_size > size:
            return
        yield offset, header
        offset += event_size


def _check_magic(handle, path: Path) -> None:
    if handle.read(4) != MAGIC:
        raise ValueError(f"{path} is not a binlog file (bad magic)")


def start_state(path: Path) -> dict[int, Gtid]:
    """The GTID state before the file's first transaction (its Gtid_list event)."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        _check_magic(handle, path)
        for number, (offset, header) in enumerate(_events(handle, size)):
            if header[1] == GTID_LIST_EVENT:
                return _gtid_list(handle, offset)
            if number > 4 or header[1] == GTID_EVENT:
                break
    return {}


def _gtid_list(handle, offset: int) -> dict[int, Gtid]:
    handle.seek(offset + HEADER.size)
    (count,) = struct.unpack("<I", handle.read(4))
    state: dict[int, Gtid] = {}
    for _ in range(count & 0x0FFFFFFF):
        domain, server, seq = struct.unpack("<IIQ", handle.read(16))
        state[domain] = Gtid(domain, server, seq)
    return state


def summarize(path: Path) -> BinlogSummary:
    """Every GTID of the file in order, its start state and first/last event times."""
    size = path.stat().st_size
    summary = BinlogSummary(path=path)
    end = 4
    with path.open("rb") as handle:
        _check_magic(handle, path)
        for offset, header in _events(handle, size):
            timestamp, kind, server_id = header[0], header[1], header[2]
            end = offset + header[3]
            if kind == GTID_LIST_EVENT and not summary.gtids:
                summary.start_state = _gtid_list(handle, offset)
            elif kind == GTID_EVENT:
                handle.seek(offset + HEADER.size)
                seq, domain = struct.unpack("<QI", handle.read(12))
                summary.gtids.append(Gtid(domain, server_id, seq))
                moment = datetime.fromtimestamp(timestamp, UTC)
                summary.first_time = summary.first_time or moment
                summary.last_time = moment
    summary.complete = end == size
    return summary


def last_event_time(path: Path) -> datetime | None:
    """Time of the file's last complete event, from its tail only (cheap on large files).

    An event's header records where it ends, so the event that ends exactly at the end of the
    file is found by trying header positions backwards from the end.
    """
    size = path.stat().st_size
    with path.open("rb") as handle:
        low = max(4, size - TAIL_SEARCH_BYTES)
        handle.seek(low)
        tail = handle.read(size - low)
    for offset in range(len(tail) - HEADER.size, -1, -1):
        timestamp, _, _, event_size, end_pos, _ = HEADER.unpack_from(tail, offset)
        if offset + event_size == len(tail) and low + offset + event_size == end_pos:
            return datetime.fromtimestamp(timestamp, UTC) if timestamp else None
    return None
