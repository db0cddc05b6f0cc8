"""Backups and point-in-time recovery against real servers (issue #17).

A cluster of its own for this module: the tests fail over and replace the cluster, which the
session cluster's other users must not see. Order matters a little: the failover test swaps the
roles, the `--replace` test runs last.
"""

from __future__ import annotations

import contextlib
import json
import struct
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pymysql
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from ledgerguard.backup.archive import archived_gtids, list_segments
from ledgerguard.backup.archiver import (
    archiver_pid,
    archiver_status,
    start_archiver,
    stop_archiver,
)
from ledgerguard.backup.binlog_file import Gtid, covers, parse_position
from ledgerguard.backup.catalog import find_backup, list_backups
from ledgerguard.backup.create import create_backup
from ledgerguard.backup.errors import BackupCorrupt, BackupError
from ledgerguard.backup.external import MARKER_DATABASE
from ledgerguard.backup.restore import restore, restored_server, stop_restored
from ledgerguard.backup.scratch import (
    SCRATCH_SERVER_ID,
    scratch_spec,
    start_fresh,
    start_restored,
)
from ledgerguard.backup.verify import verify_backup
from ledgerguard.cli.main import app
from ledgerguard.cluster.admin import Endpoint, admin_connection, run, scalar
from ledgerguard.cluster.failover import failover
from ledgerguard.cluster.local import LocalCluster
from ledgerguard.cluster.spec import ServerSpec
from ledgerguard.db.dialect import Flavour, Statement, last_gtid_query
from ledgerguard.errors import LedgerGuardError
from ledgerguard.settings import Settings
from tests.support import make_settings, settings_env

runner = CliRunner()
INSERT = (
    "INSERT INTO ledgerguard.transactions (user_id, amount, currency, occurred_at, created_at) "
    "VALUES (%s, %s, 'USD', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))"
)
COUNT = Statement("SELECT COUNT(*) FROM ledgerguard.transactions WHERE user_id = %s")


@pytest.fixture(scope="module")
def bk_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("bk"))


@pytest.fixture(scope="module")
def bk_cluster(bk_settings: Settings) -> Iterator[LocalCluster]:
    """A cluster with the binlog archiver running, for this module only."""
    local = LocalCluster(bk_settings)
    try:
        local.up()
        start_archiver(bk_settings)
        yield local
    finally:
        try:
            stop_archiver(bk_settings)
            for folder in (bk_settings.state_dir / "restores").glob("*"):
                with contextlib.suppress(LedgerGuardError):
                    stop_restored(bk_settings, folder)
            LocalCluster(bk_settings).down()
        finally:
            current = LocalCluster(bk_settings)
            for role in ("replica", "primary"):
                current.server(role).kill()


def _root(cluster: LocalCluster, role: str = "primary"):
    fresh = LocalCluster(cluster.settings)  # roles follow topology.json after a failover
    return admin_connection(fresh.specs[role], password=fresh.root_password)


def _insert(cluster: LocalCluster, user_id: int, rows: int) -> None:
    with _root(cluster) as conn, conn.cursor() as cur:
        for number in range(rows):
            cur.execute(INSERT, (user_id, f"{number + 1}.00"))


def _count(conn: pymysql.connections.Connection, user_id: int) -> int:
    return int(scalar(conn, Statement(COUNT.sql, (user_id,))))


def _wait_archived(cluster: LocalCluster, timeout: float = 30.0) -> None:
    """Poll until the archive holds everything the acting primary has written."""
    fresh = LocalCluster(cluster.settings)
    target = parse_position(fresh.primary_gtid())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        segments = list_segments(cluster.settings)
        if segments and covers(segments[-1].end_state, target):
            return
        time.sleep(0.2)
    raise AssertionError(f"the archive did not reach {target}: {archiver_status(cluster.settings)}")


def _mistaken_delete(cluster: LocalCluster, *, deleted: int, later: int) -> datetime:
    """25 rows of user `deleted`, the moment noted, then those rows deleted by mistake and 5 rows
    of user `later` written after the point; returns the noted moment, once archived."""
    _insert(cluster, deleted, 25)
    time.sleep(1.1)
    noted = datetime.now(UTC)
    time.sleep(1.1)
    with _root(cluster) as conn:
        run(conn, Statement("DELETE FROM ledgerguard.transactions WHERE user_id = %s", (deleted,)))
    _insert(cluster, later, 5)  # after the point: must not come back
    _wait_archived(cluster)
    return noted


def test_backup_under_write_load_matches_the_replica_at_its_gtid(bk_cluster: LocalCluster):
    settings = bk_cluster.settings
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        with _root(bk_cluster) as conn, conn.cursor() as cur:
            while not stop.is_set():
                cur.execute(INSERT, (1_700_001, "12.34"))
                cur.execute(last_gtid_query(Flavour.MARIADB).sql)
                written.append(Gtid.parse(cur.fetchone()["@@SESSION.last_gtid"]).seq)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(0.5)
        manifest = create_backup(settings)
    finally:
        stop.set()
        thread.join()
    assert len(written) > 50  # the backup really ran under load
    assert manifest.gtid and manifest.files and "MariaDB" in manifest.server_version
    stored = json.loads((find_backup(settings).folder / "manifest.json").read_text())
    entry = next(f for f in stored["files"] if f["path"] == "ledgerguard/transactions.ibd")
    assert len(entry["sha256"]) == 64 and entry["stored_size"] > 0
    result = verify_backup(settings, backup_id=manifest.id, chunk_size=50)
    assert result["ok"] and result["differences"] == [] and result["rows"] >= len(written)
    assert result["tables"]["transactions"] >= 2
    listed = runner.invoke(app, ["backup", "list", "--json"], env=settings_env(settings))
    assert listed.exit_code == 0, listed.output
    data = json.loads(listed.stdout)
    assert data["backups"][0]["id"] == manifest.id and data["backups"][0]["verified"]["ok"]
    # restoring to exactly the backup's GTID gives exactly the rows committed up to it
    restored = runner.invoke(
        app, ["restore", "--to-gtid", manifest.gtid, "--json"], env=settings_env(settings)
    )
    assert restored.exit_code == 0, restored.output
    info = json.loads(restored.stdout)
    assert info["gtid"] == manifest.gtid
    folder = Path(info["folder"])
    with admin_connection(
        restored_server(settings, folder).spec, password=bk_cluster.root_password
    ) as conn:
        restored_rows = _count(conn, 1_700_001)
    stop_restored(settings, folder)
    backup_seq = parse_position(manifest.gtid).mariadb_position[0].seq
    assert restored_rows == sum(1 for seq in written if seq <= backup_seq)
    assert 0 < restored_rows < len(written)  # some rows were committed after the backup


def test_point_in_time_restore_undoes_a_mistaken_delete(bk_cluster: LocalCluster):
    settings = bk_cluster.settings
    create_backup(settings)
    noted = _mistaken_delete(bk_cluster, deleted=1_700_002, later=1_700_003)
    result = runner.invoke(
        app, ["restore", "--to", noted.isoformat(), "--json"], env=settings_env(settings)
    )
    assert result.exit_code == 0, result.output
    folder = Path(json.loads(result.stdout)["folder"])
    assert folder.parent == settings.state_dir / "restores"
    server = restored_server(settings, folder)
    assert server.spec.port not in (settings.primary_port, settings.replica_port)
    with admin_connection(server.spec, password=bk_cluster.root_password) as conn:
        assert _count(conn, 1_700_002) == 25
        assert _count(conn, 1_700_003) == 0
    stop_restored(settings, folder)
    with _root(bk_cluster) as conn:  # the running cluster was not touched
        assert _count(conn, 1_700_002) == 0 and _count(conn, 1_700_003) == 5


def test_logical_backup_verifies_and_restores_to_a_point(bk_cluster: LocalCluster):
    """The Compose (MySQL) method, run with MariaDB's own tools: mariadb-dump from the replica
    with its GTID position, verify by loading it into a scratch server, restore = the dump plus
    the archived binlogs up to a moment."""
    settings = bk_cluster.settings.model_copy(update={"backup_method": "logical"})
    _insert(bk_cluster, 1_700_010, 10)
    LocalCluster(settings).wait_for_replica(timeout=30)
    time.sleep(1.1)  # backup ids have one-second resolution
    manifest = create_backup(settings)
    assert (manifest.method, manifest.tool) == ("logical", "mariadb-dump")
    assert [entry.path for entry in manifest.files] == ["dump.sql"]
    assert covers(parse_position(manifest.gtid), parse_position(manifest.gtid))
    verified = verify_backup(settings, backup_id=manifest.id, chunk_size=50)
    assert verified["ok"] and verified["method"] == "logical" and verified["differences"] == []
    noted = _mistaken_delete(bk_cluster, deleted=1_700_011, later=1_700_012)
    restored = restore(settings, to_time=noted)
    assert restored.plan.backup.id == manifest.id  # the dump, then the archive
    with admin_connection(
        restored_server(settings, restored.folder).spec, password=bk_cluster.root_password
    ) as conn:
        assert _count(conn, 1_700_010) == 10
        assert _count(conn, 1_700_011) == 25
        assert _count(conn, 1_700_012) == 0
        # the accounts come from the settings (the dump holds none)
        assert scalar(conn, Statement("SELECT COUNT(*) FROM mysql.user WHERE User = 'api_user'"))
    stop_restored(settings, restored.folder)


@pytest.fixture
def spare_server(bk_cluster: LocalCluster, tmp_path: Path) -> Iterator[tuple[ServerSpec, str]]:
    """A spare, empty MariaDB on a free port, started here, with an admin reachable over TCP:
    what Compose's `backup-scratch` container is to `verify` and `restore`."""
    spec = scratch_spec(
        bk_cluster.settings, tmp_path / "spare", role="replica", server_id=SCRATCH_SERVER_ID + 1
    )
    server = start_fresh(bk_cluster.settings, spec)
    password = "Spare-Scratch-Admin-1"
    try:
        with admin_connection(spec, password="") as conn:
            run(
                conn,
                Statement("CREATE USER 'scratch_admin'@'127.0.0.1' IDENTIFIED BY %s", (password,)),
            )
            run(
                conn, Statement("GRANT ALL ON *.* TO 'scratch_admin'@'127.0.0.1' WITH GRANT OPTION")
            )
        yield spec, password
    finally:
        server.kill()


def test_a_copy_holding_a_prepared_transaction_starts_with_it_rolled_back(
    bk_settings: Settings, tmp_path: Path
):
    """What `mariadb-backup` can catch on a replica applying in parallel (MDEV-36025): a
    transaction InnoDB prepared (binlog two-phase commit) but never committed, in a datadir
    without the binlog that would decide it. Made here on purpose: an XA transaction under the
    server's own XID format (`MySQLXid`, server id, number) prepared, the server killed, its
    binlog deleted. `mariadbd` alone refuses to start on it; `start_restored` rolls it back."""
    spec = scratch_spec(
        bk_settings, tmp_path / "copy", role="replica", server_id=SCRATCH_SERVER_ID + 2
    )
    server = start_fresh(bk_settings, spec)
    xid = struct.pack("<8sQQ", b"MySQLXid", spec.server_id, 7).hex()
    try:
        with admin_connection(spec, password="") as conn:
            run(conn, Statement("CREATE DATABASE copied"))
            run(conn, Statement("CREATE TABLE copied.t (id INT PRIMARY KEY) ENGINE=InnoDB"))
            run(conn, Statement("INSERT INTO copied.t VALUES (1)"))
            for step in ("START", "", "END", "PREPARE"):
                sql = (
                    "INSERT INTO copied.t VALUES (2)" if not step else f"XA {step} X'{xid}', '', 1"
                )
                run(conn, Statement(sql))
            server.kill()
        for binlog in spec.datadir.glob("mariadb-bin*"):
            binlog.unlink()

        server = start_restored(bk_settings, spec)
        with admin_connection(spec, password="") as conn:
            rows = run(conn, Statement("SELECT id FROM copied.t ORDER BY id"))
            pending = run(conn, Statement("XA RECOVER"))
        assert [row["id"] for row in rows] == [1]
        assert pending == []
        assert "Heuristic crash recovery mode" in spec.error_log.read_text()
    finally:
        server.kill()


def _databases(spec: ServerSpec) -> set[str]:
    with admin_connection(spec, password="") as conn:
        return {row["Database"] for row in run(conn, Statement("SHOW DATABASES"))}


def test_verify_and_restore_use_an_external_scratch_server(
    bk_cluster: LocalCluster, spare_server: tuple[ServerSpec, str]
):
    """LEDGERGUARD_BACKUP_SCRATCH_HOST (Compose's mode, run here with MariaDB): the dump is
    loaded into that running server instead of a new local one, compared with the replica, and
    the server is emptied again; a restore lands there; `--replace` is refused with the manual
    procedure; a damaged dump still fails verify, and a server that looks real is not wiped."""
    spec, password = spare_server
    settings = bk_cluster.settings.model_copy(
        update={
            "backup_method": "logical",
            "backup_scratch_host": "127.0.0.1",
            "backup_scratch_port": spec.port,
            "backup_scratch_user": "scratch_admin",
            "backup_scratch_password": SecretStr(password),
        }
    )
    _insert(bk_cluster, 1_700_020, 7)
    LocalCluster(settings).wait_for_replica(timeout=30)
    time.sleep(1.1)  # backup ids have one-second resolution
    manifest = create_backup(settings)
    restores_before = set((settings.state_dir / "restores").glob("*"))
    verified = verify_backup(settings, backup_id=manifest.id, chunk_size=50)
    assert verified["ok"] and verified["differences"] == [] and verified["rows"] > 0
    assert set((settings.state_dir / "restores").glob("*")) == restores_before
    left = _databases(spec)
    assert MARKER_DATABASE in left and "ledgerguard" not in left  # emptied again
    assert verify_backup(settings, backup_id=manifest.id, chunk_size=50)["ok"]  # and reusable

    noted = _mistaken_delete(bk_cluster, deleted=1_700_021, later=1_700_022)
    restored = restore(settings, to_time=noted)
    assert restored.external and restored.plan.backup.id == manifest.id
    scratch = Endpoint("scratch", "127.0.0.1", spec.port)
    with admin_connection(scratch, user="scratch_admin", password=password) as conn:
        assert _count(conn, 1_700_020) == 7
        assert _count(conn, 1_700_021) == 25
        assert _count(conn, 1_700_022) == 0
    with pytest.raises(LedgerGuardError, match="external scratch server"):
        stop_restored(settings, restored.folder)
    env = settings_env(settings)
    refused = runner.invoke(
        app, ["restore", "--to", noted.isoformat(), "--replace", "--yes"], env=env
    )
    assert refused.exit_code == 1 and "manual procedure" in refused.output
    assert _count_on(scratch, password, 1_700_021) == 25  # refused before touching anything

    with admin_connection(spec, password="") as conn:  # a server that may be a real one
        run(conn, Statement(f"DROP DATABASE {MARKER_DATABASE}"))
    with pytest.raises(BackupError, match="not wiped"):
        verify_backup(settings, backup_id=manifest.id)
    assert "ledgerguard" in _databases(spec)  # untouched

    dump = find_backup(settings, manifest.id).folder / "data" / "dump.sql.zst"
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    result = runner.invoke(app, ["backup", "verify", "--backup", manifest.id], env=env)
    assert result.exit_code == 1 and "dump.sql.zst" in result.output
    import shutil

    shutil.rmtree(find_backup(settings, manifest.id).folder)  # later tests use good backups


def _count_on(endpoint: Endpoint, password: str, user_id: int) -> int:
    with admin_connection(endpoint, user="scratch_admin", password=password) as conn:
        return _count(conn, user_id)


def test_the_backup_account_can_back_up_but_not_write_or_read_password_hashes(
    bk_cluster: LocalCluster,
):
    settings = bk_cluster.settings
    login = {"user": settings.backup_user, "password": settings.backup_password.get_secret_value()}
    # a cluster provisioned before the account existed gets it at its next `cluster up`
    with _root(bk_cluster) as conn:
        run(conn, Statement(f"DROP USER '{settings.backup_user}'@'%%'"))
    LocalCluster(settings).up()
    with admin_connection(LocalCluster(settings).specs["primary"], **login) as conn:
        assert run(conn, Statement("SHOW BINARY LOGS"))  # what the archiver needs
        for forbidden in (
            "SELECT COUNT(*) FROM mysql.global_priv",
            "DELETE FROM ledgerguard.transactions WHERE user_id = 0",
            "STOP SLAVE",
        ):
            with pytest.raises(pymysql.MySQLError, match=r"denied|privilege"):
                run(conn, Statement(forbidden))
    # the archiver streams with that account and was given no other secret
    environ = Path(f"/proc/{archiver_pid(settings)}/environ").read_bytes()
    assert settings.backup_password.get_secret_value().encode() in environ
    for other in (settings.mysql_root_password, settings.repl_password, settings.api_db_password):
        assert other.get_secret_value().encode() not in environ


def test_a_point_outside_the_covered_range_is_refused_with_the_range(bk_cluster: LocalCluster):
    env = settings_env(bk_cluster.settings)
    for args in (["--to", "2001-01-01T00:00:00Z"], ["--to", "2999-01-01T00:00:00Z"]):
        result = runner.invoke(app, ["restore", *args], env=env)
        assert result.exit_code == 1, result.output
        assert "cover" in result.output and "GTID" in result.output
    result = runner.invoke(app, ["restore", "--to", "yesterday"], env=env)
    assert result.exit_code == 1 and "ISO 8601" in result.output
    result = runner.invoke(app, ["restore", "--to-gtid", "0-1-x"], env=env)
    assert result.exit_code == 1 and "not a GTID position or set" in result.output


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_corrupted_backup_file_fails_verify_naming_it(bk_cluster: LocalCluster, damage: str):
    settings = bk_cluster.settings
    time.sleep(1.1)  # backup ids have one-second resolution
    manifest = create_backup(settings)
    folder = find_backup(settings, manifest.id).folder
    victim = folder / "data" / "ledgerguard" / "transactions.ibd.zst"
    data = bytearray(victim.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        data = data[: len(data) // 2]
    victim.write_bytes(bytes(data))
    with pytest.raises(BackupCorrupt, match=r"transactions\.ibd\.zst"):
        verify_backup(settings, backup_id=manifest.id)
    result = runner.invoke(
        app, ["backup", "verify", "--backup", manifest.id], env=settings_env(settings)
    )
    assert result.exit_code == 1 and "transactions.ibd.zst" in result.output
    assert not find_backup(settings, manifest.id).verified["ok"]
    import shutil

    shutil.rmtree(folder)  # the next tests restore from good backups only


def test_the_binlog_archive_survives_a_failover_without_gtid_gap(bk_cluster: LocalCluster):
    settings = bk_cluster.settings
    _insert(bk_cluster, 1_700_004, 10)
    _wait_archived(bk_cluster)
    segments_before = len(list_segments(settings))
    failover(LocalCluster(settings))
    # the archiver notices the new primary within a second or two (it polls the topology)
    deadline = time.monotonic() + 30
    while len(list_segments(settings)) == segments_before and time.monotonic() < deadline:
        time.sleep(0.2)
    _insert(bk_cluster, 1_700_004, 10)  # on the new primary
    _wait_archived(bk_cluster)
    # the demoted primary wrote nothing of its own after the switch: it follows the new one
    LocalCluster(settings).wait_for_replica(timeout=30)
    assert LocalCluster(settings).status().healthy
    segments = list_segments(settings)
    assert len(segments) == segments_before + 1
    assert segments[-1].server_id == LocalCluster(settings).specs["primary"].server_id
    assert not segments[-1].gap_before
    seqs = [g.seq for g in archived_gtids(settings) if g.domain == 0]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a GTID is missing"
    status = runner.invoke(
        app, ["backup", "archive", "status", "--json"], env=settings_env(settings)
    )
    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout)["streaming"] is True
    # a restore across the failover replays both segments
    _wait_archived(bk_cluster)
    gtid = LocalCluster(settings).primary_gtid()
    result = runner.invoke(
        app, ["restore", "--to-gtid", gtid, "--json"], env=settings_env(settings)
    )
    assert result.exit_code == 0, result.output
    folder = Path(json.loads(result.stdout)["folder"])
    with admin_connection(
        restored_server(settings, folder).spec, password=bk_cluster.root_password
    ) as conn:
        assert _count(conn, 1_700_004) == 20
    stop_restored(settings, folder)


def test_prune_keeps_the_newest_and_the_newest_verified_backup(bk_cluster: LocalCluster):
    settings = bk_cluster.settings
    time.sleep(1.1)
    create_backup(settings)  # newest, not verified
    env = settings_env(settings) | {
        "LEDGERGUARD_BACKUP_KEEP_DAILY": "1",
        "LEDGERGUARD_BACKUP_KEEP_WEEKLY": "0",
    }
    before = {b.id: b for b in list_backups(settings)}
    newest_verified = next(b.id for b in before.values() if b.verified_at is not None)
    dry = runner.invoke(app, ["backup", "prune", "--dry-run", "--json"], env=env)
    assert dry.exit_code == 0, dry.output
    plan = json.loads(dry.stdout)
    assert set(plan["keep"]) == {max(before), newest_verified}
    assert set(plan["delete"]) == set(before) - set(plan["keep"]) and plan["delete"]
    assert {b.id for b in list_backups(settings)} == set(before)  # nothing deleted yet
    done = runner.invoke(app, ["backup", "prune", "--json"], env=env)
    assert done.exit_code == 0, done.output
    assert {b.id for b in list_backups(settings)} == set(plan["keep"])
    # what is kept is still restorable: the archive still reaches back to it
    window = json.loads(runner.invoke(app, ["backup", "list", "--json"], env=env).stdout)
    assert window["recovery_window"]["from_gtid"] is not None


def test_replace_is_refused_while_the_api_runs_and_needs_a_confirmation(
    bk_cluster: LocalCluster, tmp_path: Path
):
    from ledgerguard.api.server import start_background, stop_background

    settings = bk_cluster.settings
    env = settings_env(settings)
    primary_dir = settings.state_dir / "primary"
    refused = runner.invoke(
        app, ["restore", "--to-gtid", "0-1-1", "--folder", str(primary_dir)], env=env
    )
    assert refused.exit_code == 1 and "overlaps the cluster" in refused.output
    gtid = LocalCluster(settings).primary_gtid()
    _wait_archived(bk_cluster)
    start_background(settings)
    try:
        result = runner.invoke(app, ["restore", "--to-gtid", gtid, "--replace", "--yes"], env=env)
        assert result.exit_code == 1 and "API is running" in result.output
    finally:
        stop_background(settings)
    declined = runner.invoke(app, ["restore", "--to-gtid", gtid, "--replace"], env=env, input="n\n")
    assert declined.exit_code != 0
    with _root(bk_cluster) as conn:
        before = _count(conn, 1_700_004)
        _insert(bk_cluster, 1_700_005, 3)  # after the restore point: gone after --replace
    _wait_archived(bk_cluster)
    replaced = runner.invoke(
        app, ["restore", "--to-gtid", gtid, "--replace", "--yes", "--json"], env=env
    )
    assert replaced.exit_code == 0, replaced.output
    assert Path(json.loads(replaced.stdout)["replaced"]["old_cluster"]).is_dir()
    cluster = LocalCluster(settings)
    assert cluster.status().healthy
    with _root(cluster) as conn:
        assert _count(conn, 1_700_004) == before and _count(conn, 1_700_005) == 0
    _insert(cluster, 1_700_006, 2)  # the replaced cluster takes writes and replicates them
    cluster.wait_for_replica(timeout=30)
    with _root(cluster, "replica") as conn:
        assert _count(conn, 1_700_006) == 2
