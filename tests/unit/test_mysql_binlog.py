"""The MySQL 8.4 side of the binlog archive, without a MySQL server.

No MySQL server or `mysqlbinlog` can be installed here (Debian 12 ships MariaDB only, and
neither PyPI nor npm carries MySQL's binaries), so these tests build binlog files byte by byte
from the documented layouts and check the reader, the GTID sets and the archive bookkeeping on
them. Layouts followed (MySQL Source Code Documentation, "Replication" > binary log events,
and the MySQL 8.4 Reference Manual, 19.1.3 "Replication with Global Transaction Identifiers"):

* file: magic `\\xfebin`, then events with the v4 common header (timestamp u32, type_code u8,
  server_id u32, event_size u32, log_pos u32, flags u16), little-endian;
* `Format_description_event` (15): binlog_version u16, server_version char[50],
  create_timestamp u32, common_header_len u8, post_header_len[], checksum_alg u8, then the
  checksum; with `binlog_checksum=CRC32` every event ends with the CRC32 (zlib's) of all its
  preceding bytes, counted in event_size;
* `Previous_gtids_log_event` (35): n_sids u64, then per source its 16 uuid bytes, n_intervals
  u64 and (start i64, end i64) intervals, end exclusive (`Gtid_set::encode`);
* `Gtid_log_event` (33): gtid_flags u8, sid 16 bytes, gno i64, then the logical clock
  (ts_type u8, last_committed i64, sequence_number i64) and commit timestamps;
  `Anonymous_gtid_log_event` (34) the same layout for a transaction without a GTID.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ledgerguard.backup.archive import (
    archived_gtids,
    chain_start,
    continue_archive,
    list_segments,
    new_segment,
)
from ledgerguard.backup.binlog_file import (
    HEADER,
    MAGIC,
    BinlogUnreadable,
    last_event_time,
    start_state,
    summarize,
)
from ledgerguard.backup.catalog import BackupPaths
from ledgerguard.backup.logical import stream_command
from ledgerguard.backup.manifest import Manifest
from ledgerguard.backup.plan import plan_restore
from ledgerguard.db.dialect import Flavour
from ledgerguard.db.gtid import Gtid, GtidSet, UuidGtid
from tests.support import make_settings

A = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
B = "9b2c0d1e-4f5a-11ef-8a3b-0242ac1e5003"
T0 = 1_790_000_000


def _event(offset: int, kind: int, server: int, body: bytes, when: int, *, crc: bool) -> bytes:
    size = HEADER.size + len(body) + (4 if crc else 0)
    head = HEADER.pack(when, kind, server, size, offset + size, 0)
    footer = struct.pack("<I", zlib.crc32(head + body)) if crc else b""
    return head + body + footer


def _fde(crc: bool) -> bytes:
    version = b"8.4.3".ljust(50, b"\0")
    post_headers = bytes(41)  # one length per event type: not read by the archive
    return struct.pack("<H", 4) + version + struct.pack("<IB", T0, 19) + post_headers + bytes([crc])


def _previous_gtids(intervals: dict[str, list[tuple[int, int]]]) -> bytes:
    body = struct.pack("<Q", len(intervals))
    for source, spans in intervals.items():
        body += uuid.UUID(source).bytes + struct.pack("<Q", len(spans))
        body += b"".join(struct.pack("<qq", start, end + 1) for start, end in spans)  # exclusive
    return body


def _gtid(source: str, number: int, *, anonymous: bool = False) -> bytes:
    sid = bytes(16) if anonymous else uuid.UUID(source).bytes
    logical_clock = struct.pack("<Bqq", 2, number - 1, number)
    timestamps = struct.pack("<Q", (T0 * 1_000_000) & ((1 << 56) - 1))[:7]
    return (
        struct.pack("<B", 1)
        + sid
        + struct.pack("<q", 0 if anonymous else number)
        + (logical_clock + timestamps)
    )


def mysql_binlog(
    path: Path,
    previous: dict[str, list[tuple[int, int]]],
    transactions: list[tuple[str, int]],
    *,
    crc: bool = True,
    anonymous: int = 0,
    torn: bool = False,
    server_id: int = 1,
    previous_body: bytes | None = None,
) -> Path:
    """A MySQL binlog file: FDE, Previous_gtids, then per transaction Gtid, BEGIN, a row-ish
    event and Xid; `anonymous` Anonymous_gtid transactions; `torn`: a half-written last event."""
    data = bytearray(MAGIC)

    def add(kind: int, body: bytes, when: int) -> None:
        data.extend(_event(len(data), kind, server_id, body, when, crc=crc))

    add(15, _fde(crc), T0)
    add(35, _previous_gtids(previous) if previous_body is None else previous_body, T0)
    for number, (source, gno) in enumerate(transactions):
        add(33, _gtid(source, gno), T0 + number)
        add(2, b"\0" * 13 + b"BEGIN", T0 + number)  # Query
        add(30, b"\x07" * 40, T0 + number)  # Write_rows: opaque to the archive
        add(16, struct.pack("<Q", number), T0 + number)  # Xid
    for number in range(anonymous):
        add(34, _gtid("", 0, anonymous=True), T0 + 50 + number)
        add(16, struct.pack("<Q", 999), T0 + 50 + number)
    if torn:
        data.extend(HEADER.pack(T0 + 99, 33, server_id, 200, len(data) + 200, 0) + b"\1" * 20)
    path.write_bytes(bytes(data))
    return path


# --- GTID sets ------------------------------------------------------------------------------------
def test_mysql_sets_parse_normalise_and_print():
    text = f"{A.upper()}:1-5:7,\n{B}:1-3:4-9"
    parsed = GtidSet.parse(text)
    assert str(parsed) == f"{A}:1-5:7,{B}:1-9"  # lower case, adjacent intervals merged
    assert parsed.flavour is Flavour.MYSQL and GtidSet.parse(str(parsed)) == parsed
    assert parsed.contains(UuidGtid(A, 7)) and not parsed.contains(UuidGtid(A, 6))
    assert GtidSet.parse(f"{A}:1-5").covers(GtidSet.parse(f"{A}:2-3"))
    assert not parsed.covers(GtidSet.parse(f"{A}:1-7"))  # 6 is missing
    assert parsed.with_gtids([UuidGtid(A, 6)]) == GtidSet.parse(f"{A}:1-7,{B}:1-9")
    assert parsed.union(GtidSet.parse(f"{A}:8-10")) == GtidSet.parse(f"{A}:1-5:7-10,{B}:1-9")
    assert parsed.last() == {A: (0, 7), B: (0, 9)}
    tagged = GtidSet.parse(f"{A}:1-3:nightly:1-2")
    assert str(tagged) == f"{A}:1-3,{A}:nightly:1-2"
    assert GtidSet.parse("") == GtidSet() and not GtidSet() and GtidSet().flavour is None


def test_mariadb_positions_are_the_same_type():
    position = GtidSet.parse("0-1-10,1-2-5")
    assert position.flavour is Flavour.MARIADB and str(position) == "0-1-10,1-2-5"
    assert position.contains(Gtid(0, 2, 9)) and not position.contains(Gtid(2, 1, 1))
    assert position.union(GtidSet.parse("0-2-12")) == GtidSet.parse("0-2-12,1-2-5")


@pytest.mark.parametrize(
    "text", ["nonsense", f"{A}", f"{A}:5-2", f"{A}:0-3", "0-1-2,3e11:1", f"{A}:1-x"]
)
def test_bad_gtid_text_is_refused(text: str):
    with pytest.raises(ValueError):
        GtidSet.parse(text)


def test_flavours_do_not_mix():
    with pytest.raises(ValueError, match="not both"):
        GtidSet.parse(f"0-1-5,{A}:1-3")


# --- the file reader ------------------------------------------------------------------------------
def test_reader_takes_previous_gtids_gtids_and_times_with_crc32(tmp_path: Path):
    previous = {A: [(1, 5), (8, 10)], B: [(1, 3)]}
    path = mysql_binlog(
        tmp_path / "binlog.000002", previous, [(A, 11), (A, 12), (B, 4)], anonymous=1
    )
    summary = summarize(path)
    assert summary.start_state == GtidSet.parse(f"{A}:1-5:8-10,{B}:1-3") == start_state(path)
    assert summary.gtids == [UuidGtid(A, 11), UuidGtid(A, 12), UuidGtid(B, 4)]
    assert summary.anonymous == 1 and summary.complete
    assert summary.end_state == GtidSet.parse(f"{A}:1-5:8-12,{B}:1-4")
    assert summary.first_time == datetime.fromtimestamp(T0, UTC)
    assert last_event_time(path) == datetime.fromtimestamp(T0 + 50, UTC)


def test_reader_without_checksums(tmp_path: Path):
    path = mysql_binlog(tmp_path / "binlog.000001", {}, [(A, 1), (A, 2)], crc=False)
    summary = summarize(path)
    assert summary.start_state == GtidSet() and summary.gtids == [UuidGtid(A, 1), UuidGtid(A, 2)]


def test_a_truncated_last_event_is_left_out(tmp_path: Path):
    path = mysql_binlog(tmp_path / "binlog.000003", {A: [(1, 2)]}, [(A, 3)], torn=True)
    summary = summarize(path)
    assert summary.gtids == [UuidGtid(A, 3)] and not summary.complete
    assert last_event_time(path) == datetime.fromtimestamp(T0, UTC)  # the Xid before the tear


def test_a_corrupt_gtid_event_fails_its_crc(tmp_path: Path):
    path = mysql_binlog(tmp_path / "binlog.000004", {}, [(A, 1), (A, 2)])
    data = bytearray(path.read_bytes())
    second_gtid = data.find(uuid.UUID(A).bytes, data.find(uuid.UUID(A).bytes) + 1)
    data[second_gtid + 16] ^= 0xFF  # its gno
    path.write_bytes(bytes(data))
    with pytest.raises(BinlogUnreadable, match="CRC32"):
        summarize(path)


def test_tagged_previous_gtids_are_refused_clearly(tmp_path: Path):
    """MySQL 8.3+ encodes a set holding tagged GTIDs with its format (1) in the count's top
    and bottom bytes (`(format << 56) | (n_tsids << 8) | format`); that layout is not read."""
    tagged_count = struct.pack("<Q", (1 << 56) | (1 << 8) | 1)
    path = mysql_binlog(tmp_path / "binlog.000005", {}, [], previous_body=tagged_count)
    with pytest.raises(BinlogUnreadable, match="tagged"):
        start_state(path)


# --- the archive's bookkeeping across a failover ----------------------------------------------------
def _segment(settings, *, server_id: int, start: GtidSet, files: list[Path]) -> None:
    segment = new_segment(
        settings, server_id=server_id, address=f"mysql-{server_id}:3306", first_file="", start=start
    )
    for path in files:
        path.rename(segment.folder / path.name)


def test_segments_chain_without_gap_after_a_failover(tmp_path: Path):
    """Server 1 (uuid A) archived up to A:1-6, then failed over to server 2 (uuid B) which had
    replicated A:1-6; the new segment asked by GTID for everything outside A:1-6, so its first
    file repeats nothing, and the chain holds A:1-6 then B:1-3 once each."""
    settings = make_settings(tmp_path, backup_dir=tmp_path / "backups")
    work = tmp_path / "incoming"
    work.mkdir()
    first = [
        mysql_binlog(work / "binlog.000001", {}, [(A, 1), (A, 2), (A, 3)]),
        mysql_binlog(work / "binlog.000002", {A: [(1, 3)]}, [(A, 4), (A, 5), (A, 6)]),
    ]
    _segment(settings, server_id=1, start=GtidSet(), files=first)
    end_of_first = list_segments(settings)[-1].end_state
    assert end_of_first == GtidSet.parse(f"{A}:1-6")
    second = [
        mysql_binlog(work / "binlog.000004", {A: [(1, 6)]}, [(B, 1), (B, 2)], server_id=2),
        mysql_binlog(work / "binlog.000005", {A: [(1, 6)], B: [(1, 2)]}, [(B, 3)], server_id=2),
    ]
    _segment(settings, server_id=2, start=end_of_first, files=second)
    segments = list_segments(settings)
    assert segments[-1].end_state == GtidSet.parse(f"{A}:1-6,{B}:1-3")
    assert [str(g) for g in archived_gtids(settings)] == [
        *(f"{A}:{n}" for n in range(1, 7)),
        *(f"{B}:{n}" for n in range(1, 4)),
    ]
    backup_position = GtidSet.parse(f"{A}:1-4")
    assert chain_start(segments, backup_position) == 0
    assert segments[0].file_for(backup_position) == 1  # binlog.000002 starts at A:1-3

    finished = datetime.fromtimestamp(T0, UTC) - timedelta(hours=1)
    folder = BackupPaths.of(settings).base / "20260101T000000Z"
    folder.mkdir(parents=True)
    Manifest(
        "20260101T000000Z",
        finished,
        finished,
        str(backup_position),
        "8.4.3",
        "replica",
        "mysqldump",
        method="logical",
    ).write(folder)
    plan = plan_restore(settings, to_gtid=f"{A}:1-6,{B}:1-2")
    steps = [step.to_dict() for step in plan.steps]
    assert [(s["segment"], s["files"], s["start"], s["stop_gtid"]) for s in steps] == [
        ("0001-server1", ["binlog.000002"], f"{A}:1-4", f"{A}:1-6"),
        ("0002-server2", ["binlog.000004", "binlog.000005"], f"{A}:1-6", f"{A}:1-6,{B}:1-2"),
    ]


def test_the_mysql_stream_asks_by_gtid_after_a_failover(tmp_path: Path):
    common = {
        "tool": "mysqlbinlog",
        "option_file": tmp_path / "c.cnf",
        "server_id": 9001,
        "folder": tmp_path,
        "first": "binlog.000004",
    }
    argv = stream_command(Flavour.MYSQL, exclude=f"{A}:1-6", **common)
    assert argv[2] == "--read-from-remote-source=BINLOG-DUMP-GTIDS"
    assert f"--exclude-gtids={A}:1-6" in argv and "--read-from-remote-server" not in argv
    assert {"--raw", "--stop-never", "--connection-server-id=9001"} <= set(argv)
    assert argv[-1] == "binlog.000004"
    with pytest.raises(ValueError):
        stream_command(Flavour.MARIADB, exclude="0-1-5", **(common | {"tool": "mariadb-binlog"}))


def test_a_new_server_continues_the_archive_at_its_end():
    """After a failover: MariaDB streams from the newest file starting inside the archive;
    MySQL asks by GTID for everything outside the archive's end; a server whose oldest file
    starts after that end leaves a recorded gap."""
    end = GtidSet.parse(f"{A}:1-6")
    starts = [
        ("binlog.000003", GtidSet.parse(f"{A}:1-2")),
        ("binlog.000004", GtidSet.parse(f"{A}:1-5")),
        ("binlog.000005", GtidSet.parse(f"{A}:1-6,{B}:1-2")),  # B's own, unarchived
    ]
    mysql = continue_archive(end, starts, flavour=Flavour.MYSQL, address="b:3306")
    assert (mysql.first_file, mysql.start, mysql.exclude, mysql.gap) == (
        "binlog.000004",
        end,
        end,
        "",
    )
    mariadb_end = GtidSet.parse("0-1-6")
    mariadb = continue_archive(
        mariadb_end,
        [("m.000001", GtidSet.parse("0-1-2")), ("m.000002", GtidSet.parse("0-1-5"))],
        flavour=Flavour.MARIADB,
        address="b:3306",
    )
    assert (mariadb.first_file, str(mariadb.start), mariadb.exclude) == ("m.000002", "0-1-5", None)
    purged = continue_archive(
        end, [("binlog.000009", GtidSet.parse(f"{A}:1-9"))], flavour=Flavour.MYSQL, address="b"
    )
    assert purged.exclude is None and "missing" in purged.gap


def test_last_event_time_of_a_stream_asked_by_gtid(tmp_path: Path):
    """A stream asked by GTID leaves excluded transactions out, so the events' recorded end
    positions are the server's, not the file's: the CRC32 finds the last event all the same."""
    path = mysql_binlog(tmp_path / "binlog.000006", {A: [(1, 6)]}, [(B, 1), (B, 2)])
    data = bytearray(path.read_bytes())
    at = 4
    while at < len(data):  # shift every recorded end position, as the server's would be
        (size,) = struct.unpack_from("<I", data, at + 9)
        struct.pack_into("<I", data, at + 13, at + size + 100_000)
        struct.pack_into("<I", data, at + size - 4, zlib.crc32(bytes(data[at : at + size - 4])))
        at += size
    path.write_bytes(bytes(data))
    assert last_event_time(path) == datetime.fromtimestamp(T0 + 1, UTC)
    assert summarize(path).gtids == [UuidGtid(B, 1), UuidGtid(B, 2)]
