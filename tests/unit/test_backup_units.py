"""Pure pieces of `ledgerguard.backup`: the binlog file reader, positions, retention rules."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ledgerguard.backup.binlog_file import (
    GTID_EVENT,
    GTID_LIST_EVENT,
    HEADER,
    MAGIC,
    Gtid,
    covers,
    format_position,
    last_event_time,
    parse_position,
    start_state,
    summarize,
)
from ledgerguard.backup.catalog import BackupInfo
from ledgerguard.backup.manifest import Manifest
from ledgerguard.backup.retention import backups_to_keep

T0 = 1_790_000_000


def _event(offset: int, kind: int, server: int, body: bytes, when: int) -> bytes:
    size = HEADER.size + len(body) + 4  # + CRC32, as the server writes it
    return HEADER.pack(when, kind, server, size, offset + size, 0) + body + b"\0\0\0\0"


def _binlog(path: Path, start: list[Gtid], gtids: list[Gtid], *, torn: bool = False) -> Path:
    data = bytearray(MAGIC)
    body = struct.pack("<I", len(start)) + b"".join(
        struct.pack("<IIQ", g.domain, g.server, g.seq) for g in start
    )
    data += _event(len(data), GTID_LIST_EVENT, 1, body, T0)
    for number, gtid in enumerate(gtids):
        body = struct.pack("<QIB", gtid.seq, gtid.domain, 0)
        data += _event(len(data), GTID_EVENT, gtid.server, body, T0 + number)
        data += _event(len(data), 16, gtid.server, b"\1" * 8, T0 + number)  # Xid
    if torn:
        data += HEADER.pack(T0 + 99, 2, 1, 500, len(data) + 500, 0)[:10]
    path.write_bytes(bytes(data))
    return path


def test_summary_reads_start_state_gtids_and_times(tmp_path: Path):
    gtids = [Gtid(0, 1, 5), Gtid(0, 1, 6), Gtid(0, 2, 7)]
    path = _binlog(tmp_path / "mariadb-bin.000002", [Gtid(0, 1, 4)], gtids)
    summary = summarize(path)
    assert summary.start_state == {0: Gtid(0, 1, 4)} == start_state(path)
    assert summary.gtids == gtids and summary.complete
    assert summary.end_state == {0: Gtid(0, 2, 7)}
    assert summary.last_time == datetime.fromtimestamp(T0 + 2, UTC)
    assert last_event_time(path) == datetime.fromtimestamp(T0 + 2, UTC)


def test_a_torn_last_event_is_ignored(tmp_path: Path):
    path = _binlog(tmp_path / "mariadb-bin.000001", [], [Gtid(0, 1, 1)], torn=True)
    summary = summarize(path)
    assert summary.gtids == [Gtid(0, 1, 1)] and not summary.complete


def test_positions_parse_format_and_compare():
    position = parse_position("0-1-10,1-2-5")
    assert format_position(position) == "0-1-10,1-2-5"
    assert covers(position, parse_position("0-2-9"))
    assert not covers(position, parse_position("0-1-11"))
    assert not covers(position, parse_position("2-1-1"))
    assert covers(position, {}) and parse_position("") == {}


def _backup(finished: datetime, *, verified: bool = False) -> BackupInfo:
    ident = finished.strftime("%Y%m%dT%H%M%SZ")
    manifest = Manifest(ident, finished, finished, "0-1-1", "10.11", "replica", "mariadb-backup")
    mark = {"ok": True, "verified_at": finished.isoformat()} if verified else None
    return BackupInfo(folder=Path(ident), manifest=manifest, verified=mark)


def test_retention_keeps_newest_per_day_and_week():
    start = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # a Monday
    backups = [
        _backup(start + timedelta(days=day, hours=hour)) for day in range(21) for hour in (0, 12)
    ]
    backups.reverse()  # newest first, as the catalog lists them
    keep = backups_to_keep(backups, daily=3, weekly=2)
    newest_of = {}
    for backup in backups:
        newest_of.setdefault(backup.manifest.finished_at.date(), backup.id)
    days = sorted(newest_of, reverse=True)
    assert {newest_of[d] for d in days[:3]} <= keep
    # the newest backup of the previous ISO week (a Sunday) is kept for the weekly rule
    assert newest_of[days[7]] in keep
    assert len(keep) == 4


def test_retention_always_keeps_the_newest_verified_backup():
    start = datetime(2026, 11, 2, tzinfo=UTC)
    backups = [_backup(start + timedelta(days=d), verified=(d == 0)) for d in range(10)]
    backups.reverse()
    keep = backups_to_keep(backups, daily=1, weekly=0)
    assert keep == {backups[0].id, backups[-1].id}
