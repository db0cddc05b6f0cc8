"""The binlog archive: what it holds, and where a (re)started stream must begin.

`mariadb-binlog --read-from-remote-server --raw --stop-never` copies the primary's binlog files
byte for byte into a **segment** folder, `<backups>/binlogs/<NNNN>-server<id>/`. A segment is
one unbroken stream from one server; a new one begins when the writable server changes
(failover, `restore --replace`), because the new primary's files have the same names but
another history. Each segment records the GTID set it starts from (its first file's
`Gtid_list` on MariaDB, `Previous_gtids` on MySQL, or on MySQL the archive's end it asked the
new server to exclude), so a restore can chain segments without gap or overlap: segment *i* is
replayed up to where segment *i+1* starts. GTIDs of both flavours are `ledgerguard.db.gtid.GtidSet`
values; the files are read by `ledgerguard.backup.binlog_file`. On MySQL the tool is
`mysqlbinlog` with the same options (`ledgerguard.backup.logical.stream_command`).

Where a stream starts:

* same server, and it still has our newest file with the same start state → that file again
  (a raw copy overwrites it, so an interrupted file is completed);
* another server → a new segment from the newest of its files that starts at or before the
  archive's end (its binlog holds every transaction it applied, so nothing is skipped); if its
  oldest file already starts after the archive's end, the gap is recorded and reported. On
  MySQL the new segment asks by GTID instead (`--exclude-gtids=<archive end>`), so it starts
  exactly at the archive's end.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import pymysql

from ledgerguard.backup.binlog_file import (
    BinlogSummary,
    covers,
    format_position,
    last_event_time,
    parse_position,
    start_state,
    summarize,
)
from ledgerguard.backup.catalog import BackupPaths
from ledgerguard.cluster.admin import run
from ledgerguard.db.dialect import Flavour, Statement
from ledgerguard.db.gtid import AnyGtid, GtidSet
from ledgerguard.files import write_text_atomic
from ledgerguard.settings import Settings

SEGMENT_META = "segment.json"
_SEGMENT = re.compile(r"^(\d{4})-server(\d+)$")
SHOW_BINARY_LOGS = Statement("SHOW BINARY LOGS")
SHOW_MASTER_STATUS = Statement("SHOW MASTER STATUS")
#: `SHOW BINLOG EVENTS`' name of the event a binlog file starts with (its GTID start set).
SERVER_START_EVENTS = ("Gtid_list", "Previous_gtids")


def show_binlog_start(file_name: str) -> Statement:
    """The first events of one binlog file on the server (its Gtid_list / Previous_gtids)."""
    return Statement("SHOW BINLOG EVENTS IN %s LIMIT 4", (file_name,))


def server_binlogs(conn: pymysql.connections.Connection) -> dict[str, int]:
    """The server's binlog files and their sizes, oldest first."""
    return {row["Log_name"]: int(row["File_size"]) for row in run(conn, SHOW_BINARY_LOGS)}


def server_file_start(conn: pymysql.connections.Connection, file_name: str) -> GtidSet:
    """The GTID set a binlog file on the server starts from (MariaDB `Gtid_list` `[0-1-5]`,
    MySQL `Previous_gtids` `uuid:1-5`)."""
    for row in run(conn, show_binlog_start(file_name)):
        if row["Event_type"] in SERVER_START_EVENTS:
            return parse_position((row["Info"] or "").strip("[]"))
    return GtidSet()


def server_binlog_end(conn: pymysql.connections.Connection) -> tuple[str, int] | None:
    """(file, position) the server is writing at, None without a binlog."""
    rows = run(conn, SHOW_MASTER_STATUS)
    return (rows[0]["File"], int(rows[0]["Position"])) if rows else None


@dataclass
class Segment:
    """One unbroken stream of one server's binlog files."""

    folder: Path
    number: int
    server_id: int
    address: str = ""
    started_at: str = ""
    first_file: str = ""
    start: str = ""  # GTID state before the first file
    gap_before: str = ""  # set when this segment could not continue the previous one
    closed: bool = False  # no stream continues it (its server's history was replaced)

    @property
    def files(self) -> list[Path]:
        return sorted(p for p in self.folder.iterdir() if p.name.split(".")[-1].isdigit())

    @property
    def start_state(self) -> GtidSet:
        return parse_position(self.start)

    @cached_property
    def last_summary(self) -> BinlogSummary | None:
        files = self.files
        return summarize(files[-1]) if files else None

    @property
    def end_state(self) -> GtidSet:
        """What the archive holds once this segment is replayed: its start plus its newest
        file's start and transactions (earlier files are inside that file's start set)."""
        summary = self.last_summary
        return self.start_state.union(summary.end_state) if summary else self.start_state

    def last_time(self) -> datetime | None:
        files = self.files
        return last_event_time(files[-1]) if files else None

    def file_for(self, position: GtidSet) -> int:
        """Index of the newest file starting at or before `position` (where a replay begins)."""
        index = 0
        for number, path in enumerate(self.files):
            if covers(position, start_state(path)):
                index = number
        return index

    def save(self) -> None:
        meta = asdict(self)
        meta.pop("folder")
        write_text_atomic(self.folder / SEGMENT_META, json.dumps(meta, indent=2) + "\n")

    def to_dict(self) -> dict[str, Any]:
        last = self.last_time()
        return {
            "segment": self.folder.name,
            "server_id": self.server_id,
            "address": self.address,
            "files": len(self.files),
            "start": self.start,
            "end": format_position(self.end_state),
            "last_event_at": last.isoformat() if last else None,
            "gap_before": self.gap_before,
        }


def list_segments(settings: Settings) -> list[Segment]:
    """Every archive segment, oldest first."""
    root = BackupPaths.of(settings).binlogs
    if not root.is_dir():
        return []
    segments = []
    for folder in sorted(root.iterdir()):
        match = _SEGMENT.match(folder.name)
        if not match or not (folder / SEGMENT_META).is_file():
            continue
        meta = json.loads((folder / SEGMENT_META).read_text())
        segments.append(Segment(folder=folder, **meta))
    return segments


def new_segment(
    settings: Settings,
    *,
    server_id: int,
    address: str,
    first_file: str,
    start: GtidSet,
    gap_before: str = "",
) -> Segment:
    existing = list_segments(settings)
    number = existing[-1].number + 1 if existing else 1
    folder = BackupPaths.of(settings).binlogs / f"{number:04d}-server{server_id}"
    folder.mkdir(parents=True, exist_ok=True)
    segment = Segment(
        folder=folder,
        number=number,
        server_id=server_id,
        address=address,
        started_at=datetime.now(UTC).isoformat(),
        first_file=first_file,
        start=format_position(start),
        gap_before=gap_before,
    )
    segment.save()
    return segment


@dataclass
class StreamStart:
    """Where the next stream writes and from which server file it starts.

    `exclude` set: the stream asks by GTID (MySQL `--read-from-remote-source=BINLOG-DUMP-GTIDS
    --exclude-gtids=<exclude>`): the server sends every transaction it has outside that set.
    """

    segment: Segment
    file_name: str
    new_segment: bool
    notes: list[str] = field(default_factory=list)
    exclude: GtidSet | None = None


@dataclass(frozen=True)
class NewSegmentStart:
    """Where a new segment on another server begins (see `continue_archive`)."""

    first_file: str
    start: GtidSet
    exclude: GtidSet | None = None
    gap: str = ""


def continue_archive(
    end: GtidSet, starts: list[tuple[str, GtidSet]], *, flavour: Flavour, address: str
) -> NewSegmentStart:
    """How a server whose binlog files start at `starts` (oldest first) continues an archive
    that ends at `end`.

    From the newest file that starts at or before `end` (its binlog holds every transaction it
    applied since). MySQL asks by GTID for everything outside `end` instead, so the segment
    starts at `end` exactly. No such file: from its oldest one, with the gap recorded.
    """
    usable = [(name, state) for name, state in starts if covers(end, state)]
    if usable:
        first_file, first_state = usable[-1]
        if flavour is Flavour.MYSQL:
            return NewSegmentStart(first_file, start=end, exclude=end)
        return NewSegmentStart(first_file, start=first_state)
    first_file, first_state = starts[0]
    return NewSegmentStart(
        first_file,
        start=first_state,
        gap=(
            f"the archive ends at {format_position(end)} but {address}'s oldest binlog "
            f"starts at {format_position(first_state)}: transactions in between are missing"
        ),
    )


def plan_stream(
    settings: Settings,
    conn: pymysql.connections.Connection,
    *,
    server_id: int,
    address: str,
    flavour: Flavour = Flavour.MARIADB,
) -> StreamStart:
    """Decide where the stream from the server behind `conn` continues (see module docstring).

    MySQL: a new segment that continues the archive asks the new server by GTID for everything
    the archive lacks (`StreamStart.exclude` = the archive's end), so it starts exactly where the
    archive ends; the server itself refuses when it has purged any of those transactions.
    """
    names = server_binlogs(conn)
    if not names:
        raise ValueError(f"the server {address} keeps no binlog")
    segments = list_segments(settings)
    if segments:
        current = segments[-1]
        files = current.files
        if current.server_id == server_id and current.address == address and not current.closed:
            resume = files[-1].name if files else current.first_file
            local_start = start_state(files[-1]) if files else current.start_state
            local_size = files[-1].stat().st_size if files else 0
            if (
                resume in names
                and names[resume] >= local_size
                and server_file_start(conn, resume) == local_start
            ):
                return StreamStart(current, resume, new_segment=False)
        starts = [(name, server_file_start(conn, name)) for name in names]
        choice = continue_archive(current.end_state, starts, flavour=flavour, address=address)
        segment = new_segment(
            settings,
            server_id=server_id,
            address=address,
            first_file=choice.first_file,
            start=choice.start,
            gap_before=choice.gap,
        )
        return StreamStart(
            segment,
            choice.first_file,
            new_segment=True,
            notes=[choice.gap] if choice.gap else [],
            exclude=choice.exclude,
        )
    first_file = next(iter(names))
    segment = new_segment(
        settings,
        server_id=server_id,
        address=address,
        first_file=first_file,
        start=server_file_start(conn, first_file),
    )
    return StreamStart(segment, first_file, new_segment=True)


def close_current_segment(settings: Settings) -> None:
    """Mark the newest segment finished: the next stream starts a new one, whatever server."""
    segments = list_segments(settings)
    if segments:
        segments[-1].closed = True
        segments[-1].save()


def chain_start(segments: list[Segment], position: GtidSet) -> int | None:
    """Index of the segment a replay from `position` begins in (None: not archived).

    The newest segment that starts at or before `position` and reaches it.
    """
    found = None
    for number, segment in enumerate(segments):
        if covers(position, segment.start_state) and covers(segment.end_state, position):
            found = number
    return found


def archive_end(settings: Settings) -> tuple[GtidSet, datetime | None]:
    """The GTID set and time of the newest archived event (empty, None: nothing archived)."""
    segments = list_segments(settings)
    if not segments:
        return GtidSet(), None
    return segments[-1].end_state, segments[-1].last_time()


def archived_gtids(settings: Settings) -> list[AnyGtid]:
    """Every archived GTID in stream order, segments chained (for gap checks and tests)."""
    gtids: list[AnyGtid] = []
    segments = list_segments(settings)
    for number, segment in enumerate(segments):
        limit = segments[number + 1].start_state if number + 1 < len(segments) else None
        for path in segment.files:
            for gtid in summarize(path).gtids:
                if limit is None or limit.contains(gtid):
                    gtids.append(gtid)
    # a later segment restarts at an earlier file: keep the first copy of each GTID
    seen: set[tuple[str, int]] = set()
    unique = []
    for gtid in gtids:
        if (gtid.source, gtid.seq) not in seen:
            seen.add((gtid.source, gtid.seq))
            unique.append(gtid)
    return unique
