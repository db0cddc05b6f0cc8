"""Pure pieces of `ledgerguard.backup`: the binlog file reader, positions, retention rules."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

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
from ledgerguard.backup.errors import BackupError, ToolNotFound
from ledgerguard.backup.logical import (
    backup_method,
    dump_command,
    dump_position,
    load_command,
    replay_command,
    stream_command,
)
from ledgerguard.backup.manifest import Manifest
from ledgerguard.backup.retention import backups_to_keep
from ledgerguard.backup.tools import find_tool
from ledgerguard.cluster.provision import account_grants
from ledgerguard.db.dialect import Flavour
from ledgerguard.db.gtid import GtidSet
from tests.support import make_settings

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
    assert summary.start_state == GtidSet.of([Gtid(0, 1, 4)]) == start_state(path)
    assert summary.gtids == gtids and summary.complete
    assert summary.end_state == GtidSet.of([Gtid(0, 2, 7)])
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
    assert covers(position, GtidSet()) and parse_position("") == GtidSet()


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


def test_a_missing_backup_tool_names_its_debian_package():
    with pytest.raises(ToolNotFound, match=r"apt-get install -y mariadb-backup\)"):
        find_tool("/nonexistent/mariadb-backup")


# --- the logical method's commands, per flavour (MySQL's cannot run here: no MySQL server) -----
def test_dump_commands_use_each_flavours_position_flags(tmp_path: Path):
    cnf = tmp_path / "c.cnf"
    mariadb = dump_command(Flavour.MARIADB, tool="mariadb-dump", option_file=cnf, databases=["a"])
    mysql = dump_command(Flavour.MYSQL, tool="mysqldump", option_file=cnf, databases=["a"])
    for argv in (mariadb, mysql):
        assert argv[1] == f"--defaults-file={cnf}"  # first option: the login, no password here
        assert "--single-transaction" in argv and argv[-2:] == ["--databases", "a"]
        assert not [arg for arg in argv if arg.startswith("--password")]
    assert {"--master-data=2", "--gtid"} <= set(mariadb)
    assert not {"--source-data=2", "--set-gtid-purged=ON"} & set(mariadb)
    assert {"--source-data=2", "--set-gtid-purged=ON"} <= set(mysql)
    assert not {"--master-data=2", "--gtid"} & set(mysql)


def test_load_replay_and_stream_commands_per_flavour(tmp_path: Path):
    cnf = tmp_path / "c.cnf"
    assert "--init-command=SET SESSION sql_log_bin = 0" in load_command(
        Flavour.MARIADB, tool="mariadb", option_file=cnf
    )
    # MySQL's dump turns the binlog off itself (it sets GTID_PURGED)
    assert not [
        a for a in load_command(Flavour.MYSQL, tool="mysql", option_file=cnf) if "init" in a
    ]
    files = [tmp_path / "b.000001"]
    stop = "2026-11-29 10:15:00"
    mariadb = replay_command(
        Flavour.MARIADB,
        tool="mariadb-binlog",
        files=files,
        start="0-1-5",
        stop_gtid="0-1-9",
        stop_datetime=stop,
    )
    assert mariadb == [
        "mariadb-binlog",
        "--no-defaults",
        "--start-position=0-1-5",
        "--stop-position=0-1-9",
        f"--stop-datetime={stop}",
        str(files[0]),
    ]
    uuid = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
    mysql = replay_command(
        Flavour.MYSQL,
        tool="mysqlbinlog",
        files=files,
        start=f"{uuid}:1-5",
        stop_gtid=f"{uuid}:1-9",
        stop_datetime=None,
    )
    assert mysql == [
        "mysqlbinlog",
        "--no-defaults",
        f"--exclude-gtids={uuid}:1-5",
        f"--include-gtids={uuid}:1-9",
        str(files[0]),
    ]
    common = {"option_file": cnf, "server_id": 9001, "folder": tmp_path, "first": "b.000001"}
    mariadb_stream = stream_command(Flavour.MARIADB, tool="mariadb-binlog", **common)
    mysql_stream = stream_command(Flavour.MYSQL, tool="mysqlbinlog", **common)
    for argv in (mariadb_stream, mysql_stream):
        assert {"--read-from-remote-server", "--raw", "--stop-never"} <= set(argv)
        assert argv[-1] == "b.000001" and argv[1] == f"--defaults-file={cnf}"
    assert "--stop-never-slave-server-id=9001" in mariadb_stream
    assert "--connection-server-id=9001" in mysql_stream


def test_the_dump_position_is_read_from_each_flavours_head():
    mariadb = "-- CHANGE MASTER TO MASTER_LOG_FILE='b.000002', MASTER_LOG_POS=342;\n" + (
        "-- SET GLOBAL gtid_slave_pos='0-1-1254';\n"
    )
    assert dump_position(Flavour.MARIADB, mariadb) == "0-1-1254"
    uuid_a, uuid_b = "3e11fa47-71ca-11e1-9e33-c80aa9429562", "4e11fa47-71ca-11e1-9e33-c80aa942956a"
    mysql = (
        "SET @@SESSION.SQL_LOG_BIN= 0;\n\n--\n-- GTID state at the beginning of the backup \n--\n\n"
        f"SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ '{uuid_a}:1-77,\n{uuid_b}:1-3';\n"
    )
    assert dump_position(Flavour.MYSQL, mysql) == f"{uuid_a}:1-77,{uuid_b}:1-3"
    with pytest.raises(BackupError, match="--set-gtid-purged=ON"):
        dump_position(Flavour.MYSQL, mariadb)
    with pytest.raises(BackupError, match="--master-data=2 --gtid"):
        dump_position(Flavour.MARIADB, "-- MariaDB dump 10.19\n")


def test_the_backup_method_defaults_by_flavour_and_physical_needs_mariadb(tmp_path: Path):
    settings = make_settings(tmp_path)
    assert backup_method(settings, Flavour.MARIADB) == "physical"
    assert backup_method(settings, Flavour.MYSQL) == "logical"
    logical = settings.model_copy(update={"backup_method": "logical"})
    assert backup_method(logical, Flavour.MARIADB) == "logical"
    physical = settings.model_copy(update={"backup_method": "physical"})
    with pytest.raises(BackupError, match="METHOD=logical"):
        backup_method(physical, Flavour.MYSQL)


def test_the_backup_account_gets_each_flavours_monitor_privileges(tmp_path: Path):
    settings = make_settings(tmp_path)
    grants = {
        flavour: {user: clauses for user, _, clauses in account_grants(settings, flavour)}
        for flavour in Flavour
    }
    mariadb, mysql = grants[Flavour.MARIADB]["backup_user"], grants[Flavour.MYSQL]["backup_user"]
    assert "BINLOG MONITOR, SLAVE MONITOR ON *.*" in mariadb[0]
    assert "REPLICATION CLIENT ON *.*" in mysql[0] and "MONITOR" not in mysql[0]
    for clauses in (mariadb, mysql):
        assert "RELOAD" in clauses[0] and "REPLICATION SLAVE" in clauses[0]
        assert "SELECT" not in clauses[0] and "SUPER" not in clauses[0]  # no global reads
        assert [c.split(" ON ")[1] for c in clauses[1:]] == [
            "`ledgerguard`.*",
            "`ledgerguard_audit`.*",
            "`heartbeat`.*",
        ]


def test_a_new_restore_folder_never_reuses_a_taken_name_within_one_second(tmp_path: Path):
    """A declined `--replace` keeps its restore; the next restore in the same second gets
    `-2` (the folder was refused as "not empty" before)."""
    from ledgerguard.backup.restore import new_restore_folder

    first = new_restore_folder(tmp_path)
    first.mkdir()
    (first / "kept").write_text("x")
    second = new_restore_folder(tmp_path)
    assert second != first and not second.exists()
    assert second.name.startswith(first.name[:8])
