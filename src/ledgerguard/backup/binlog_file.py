"""Reading archived binlog files (format v4, MariaDB and MySQL) without a server.

The archive must answer a few questions cheaply and without a running server: which GTIDs a
file holds (restore ranges, "no gap" checks), the GTID set a file starts from (where a segment
begins), and when its last event was written (the archive's lag). Only event headers and the
GTID events' first bytes are read; `mariadb-binlog` / `mysqlbinlog` replay. Row events are
never parsed.

Layout (both flavours): a 4-byte magic, then events, each with a 19-byte header (timestamp u32,
type u8, server_id u32, event_size u32, end position u32, flags u16), little-endian. The first
event is the FORMAT_DESCRIPTION event (type 15); its last 5 bytes are the checksum algorithm
(0 off, 1 CRC32) and its own checksum. With CRC32 every event ends with a 4-byte CRC32 of
everything before it (`event_size` counts it), which is checked on the GTID events read here.

=====================  ===================================  =====================================
event                  MariaDB 10.11                        MySQL 8.4
=====================  ===================================  =====================================
a file's start set     Gtid_list (163): count u32 (low 28   Previous_gtids (35): n_sids u64, per
                       bits), (domain u32, server u32,      source uuid 16 bytes, n_intervals u64,
                       seq u64) per domain                  (start i64, end i64 exclusive) each
one transaction        GTID (162): seq u64, domain u32      Gtid (33): flags u8, uuid 16 bytes,
                       (server: the header's server_id)     number i64; Anonymous_gtid (34): a
                                                            transaction without a GTID
=====================  ===================================  =====================================

MySQL sources: "MySQL Source Code Documentation", Replication > Binlog event layouts
(`Format_description_event`, `Gtid_event`, `Previous_gtids_event`), and `Gtid_set::encode`.
Tagged GTIDs (MySQL 8.3+, event 42) are refused with a clear error: the platform never writes
them. With `binlog_transaction_compression` the Gtid event stays outside the compressed payload,
so the reader needs nothing more.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from ledgerguard.db.gtid import AnyGtid, Gtid, GtidSet, UuidGtid

MAGIC = b"\xfebin"
HEADER = struct.Struct("<IBIIIH")
FORMAT_DESCRIPTION_EVENT = 15
GTID_EVENT = 162  # MariaDB
GTID_LIST_EVENT = 163  # MariaDB
MYSQL_GTID_EVENT = 33
MYSQL_ANONYMOUS_GTID_EVENT = 34
MYSQL_PREVIOUS_GTIDS_EVENT = 35
MYSQL_GTID_TAGGED_EVENT = 42
START_EVENTS = (GTID_LIST_EVENT, MYSQL_PREVIOUS_GTIDS_EVENT)
CHECKSUM_CRC32 = 1
CRC_SIZE = 4
#: How far from its end a file is searched for its last complete event.
TAIL_SEARCH_BYTES = 1 << 20


class BinlogUnreadable(ValueError):
    """A binlog file the bookkeeping cannot trust (not a binlog, corrupt event, unsupported)."""


def parse_position(text: str) -> GtidSet:
    """A GTID set (or MariaDB position) from its text; '' is the empty set."""
    return GtidSet.parse(text)


def format_position(position: GtidSet) -> str:
    return str(position)


def covers(position: GtidSet, target: GtidSet) -> bool:
    """Whether `position` holds every transaction of `target`."""
    return position.covers(target)


@dataclass
class BinlogSummary:
    """What one archived file holds."""

    path: Path
    start_state: GtidSet = field(default_factory=GtidSet)
    gtids: list[AnyGtid] = field(default_factory=list)
    anonymous: int = 0  # MySQL transactions without a GTID (gtid_mode off): not restorable by GTID
    first_time: datetime | None = None
    last_time: datetime | None = None
    complete: bool = True  # ends exactly at an event boundary

    @property
    def end_state(self) -> GtidSet:
        return self.start_state.with_gtids(self.gtids)


@dataclass
class _Reader:
    """One open binlog file: walks the events and decodes the few the bookkeeping needs."""

    path: Path
    handle: BinaryIO
    size: int
    checksum: bool = False

    @classmethod
    def open(cls, path: Path, handle: BinaryIO) -> _Reader:
        if handle.read(4) != MAGIC:
            raise BinlogUnreadable(f"{path} is not a binlog file (bad magic)")
        return cls(path, handle, path.stat().st_size)

    def events(self) -> Iterator[tuple[int, tuple[int, ...]]]:
        """(offset, header) of every complete event; a torn last event ends the walk."""
        offset = 4
        while offset + HEADER.size <= self.size:
            self.handle.seek(offset)
            header = HEADER.unpack(self.handle.read(HEADER.size))
            event_size = header[3]
            if event_size < HEADER.size or offset + event_size > self.size:
                return
            if header[1] == FORMAT_DESCRIPTION_EVENT and event_size >= HEADER.size + 5:
                self.handle.seek(offset + event_size - CRC_SIZE - 1)
                self.checksum = self.handle.read(1)[0] == CHECKSUM_CRC32
            yield offset, header
            offset += event_size

    def body(self, offset: int, header: tuple[int, ...]) -> bytes:
        """The event's body (footer removed), its CRC32 checked when the file has them."""
        self.handle.seek(offset)
        raw = self.handle.read(header[3])
        if not self.checksum:
            return raw[HEADER.size :]
        (stored,) = struct.unpack_from("<I", raw, len(raw) - CRC_SIZE)
        if zlib.crc32(raw[:-CRC_SIZE]) != stored:
            raise BinlogUnreadable(
                f"{self.path}: the event at offset {offset} fails its CRC32 check (corrupt file)"
            )
        return raw[HEADER.size : -CRC_SIZE]

    def start_set(self, offset: int, header: tuple[int, ...]) -> GtidSet:
        body = self.body(offset, header)
        if header[1] == GTID_LIST_EVENT:
            return _gtid_list(body)
        return _previous_gtids(body, self.path, offset)

    def gtid(self, offset: int, header: tuple[int, ...]) -> AnyGtid:
        body = self.body(offset, header)
        if header[1] == GTID_EVENT:
            seq, domain = struct.unpack_from("<QI", body)
            return Gtid(domain, header[2], seq)
        if len(body) < 25:
            raise BinlogUnreadable(f"{self.path}: the Gtid event at offset {offset} is too short")
        source = str(uuid.UUID(bytes=body[1:17]))
        (number,) = struct.unpack_from("<q", body, 17)
        return UuidGtid(source, number)


def _gtid_list(body: bytes) -> GtidSet:
    (count,) = struct.unpack_from("<I", body)
    gtids = [Gtid(*struct.unpack_from("<IIQ", body, 4 + 16 * n)) for n in range(count & 0x0FFFFFFF)]
    return GtidSet.of(gtids)


def _previous_gtids(body: bytes, path: Path, offset: int) -> GtidSet:
    """Decode `Gtid_set::encode`'s untagged format; intervals are [start, end) on disk."""
    try:
        (sources,) = struct.unpack_from("<Q", body)
        if sources >> 56:
            raise BinlogUnreadable(
                f"{path}: the Previous_gtids event at offset {offset} uses the tagged GTID "
                "format (MySQL 8.3+ GTID tags), which the archive does not read"
            )
        at, intervals = 8, {}
        for _ in range(sources):
            source = str(uuid.UUID(bytes=body[at : at + 16]))
            (count,) = struct.unpack_from("<Q", body, at + 16)
            at += 24
            spans = []
            for _ in range(count):
                start, end = struct.unpack_from("<qq", body, at)
                spans.append((start, end - 1))
                at += 16
            intervals[source] = tuple(spans)
    except struct.error:
        raise BinlogUnreadable(
            f"{path}: the Previous_gtids event at offset {offset} is shorter than its counts"
        ) from None
    return GtidSet(intervals=intervals)


def start_state(path: Path) -> GtidSet:
    """The GTID set before the file's first transaction (its Gtid_list / Previous_gtids)."""
    with path.open("rb") as handle:
        reader = _Reader.open(path, handle)
        for number, (offset, header) in enumerate(reader.events()):
            if header[1] in START_EVENTS:
                return reader.start_set(offset, header)
            if number > 4 or header[1] in (GTID_EVENT, MYSQL_GTID_EVENT):
                break
    return GtidSet()


def summarize(path: Path) -> BinlogSummary:
    """Every GTID of the file in order, its start set and first/last transaction times."""
    summary = BinlogSummary(path=path)
    end = 4
    with path.open("rb") as handle:
        reader = _Reader.open(path, handle)
        for offset, header in reader.events():
            kind = header[1]
            end = offset + header[3]
            if kind in START_EVENTS and not summary.gtids:
                summary.start_state = reader.start_set(offset, header)
            elif kind in (GTID_EVENT, MYSQL_GTID_EVENT, MYSQL_ANONYMOUS_GTID_EVENT):
                if kind == MYSQL_ANONYMOUS_GTID_EVENT:
                    summary.anonymous += 1
                else:
                    summary.gtids.append(reader.gtid(offset, header))
                moment = datetime.fromtimestamp(header[0], UTC)
                summary.first_time = summary.first_time or moment
                summary.last_time = moment
            elif kind == MYSQL_GTID_TAGGED_EVENT:
                raise BinlogUnreadable(
                    f"{path}: a tagged GTID (MySQL 8.3+ GTID tags) at offset {offset}; the "
                    "archive does not read tagged GTIDs"
                )
    summary.complete = end == reader.size
    return summary


def _has_checksums(handle: BinaryIO) -> bool:
    """Whether the file's FORMAT_DESCRIPTION event (right after the magic) announces CRC32."""
    handle.seek(4)
    head = handle.read(HEADER.size)
    if len(head) < HEADER.size:
        return False
    _, kind, _, event_size, _, _ = HEADER.unpack(head)
    if kind != FORMAT_DESCRIPTION_EVENT or event_size < HEADER.size + 5:
        return False
    handle.seek(4 + event_size - CRC_SIZE - 1)
    return handle.read(1) == bytes([CHECKSUM_CRC32])


def last_event_time(path: Path) -> datetime | None:
    """Time of the file's last complete event, from its tail only (cheap on large files).

    Header positions are tried backwards from the end. With CRC32 checksums the newest event
    whose checksum holds is the last complete one (a half-written event after it is skipped,
    and positions need not match: a MySQL stream asked by GTID leaves out excluded
    transactions, so its events' recorded end positions are the server's, not the file's).
    Without checksums, the event that ends exactly at the end of the file where its header
    says it does.
    """
    size = path.stat().st_size
    with path.open("rb") as handle:
        checksums = _has_checksums(handle)
        low = max(4, size - TAIL_SEARCH_BYTES)
        handle.seek(low)
        tail = memoryview(handle.read(size - low))
    for offset in range(len(tail) - HEADER.size, -1, -1):
        timestamp, _, _, event_size, end_pos, _ = HEADER.unpack_from(tail, offset)
        end = offset + event_size
        if event_size < HEADER.size + (CRC_SIZE if checksums else 0) or end > len(tail):
            continue
        if checksums:
            (stored,) = struct.unpack_from("<I", tail, end - CRC_SIZE)
            if zlib.crc32(tail[offset : end - CRC_SIZE]) != stored:
                continue
        elif end != len(tail) or low + end != end_pos:
            continue
        return datetime.fromtimestamp(timestamp, UTC) if timestamp else None
    return None
