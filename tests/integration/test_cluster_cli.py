"""`ledgerguard cluster ...` through Typer's runner, and the clear errors of bad situations."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from ledgerguard.cli.main import app
from ledgerguard.cluster.admin import admin_connection, run
from ledgerguard.cluster.errors import AccessDenied, BinaryNotFound, DatadirMismatch, PortInUse
from ledgerguard.cluster.local import LocalCluster
from ledgerguard.db.dialect import Statement
from ledgerguard.settings import Settings
from tests.support import api_conn, make_settings, settings_env

runner = CliRunner()


@pytest.fixture
def in_empty_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the CLI where no `.env` is found, so only the test's environment counts."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_status_json_healthy(healthy_cluster: LocalCluster, settings: Settings, in_empty_dir):
    result = runner.invoke(app, ["cluster", "status", "--json"], env=settings_env(settings))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["healthy"] is True
    assert data["primary"]["up"] and data["replica"]["up"]
    assert data["replica"]["replication"]["io_running"] is True
    assert data["replica"]["read_only"] is True and data["primary"]["read_only"] is False
    assert "MariaDB" in data["primary"]["version"]


def test_status_json_with_replica_stopped(
    healthy_cluster: LocalCluster, settings: Settings, in_empty_dir
):
    healthy_cluster.server("replica").stop(root_password=healthy_cluster.root_password)
    try:
        result = runner.invoke(app, ["cluster", "status", "--json"], env=settings_env(settings))
        assert result.exit_code == 3, result.output
        data = json.loads(result.stdout)
        assert data["healthy"] is False
        assert data["primary"]["up"] is True
        assert data["replica"]["up"] is False
        assert data["replica"]["error"] == "not running"
    finally:
        up = runner.invoke(app, ["cluster", "up"], env=settings_env(settings))
        assert up.exit_code == 0, up.output
    assert healthy_cluster.status().healthy


def test_up_is_idempotent(healthy_cluster: LocalCluster, settings: Settings, in_empty_dir):
    result = runner.invoke(app, ["cluster", "up"], env=settings_env(settings))
    assert result.exit_code == 0, result.output
    assert "already running" in result.output


def test_missing_settings_say_what_to_set(in_empty_dir, monkeypatch: pytest.MonkeyPatch):
    for name in ("MYSQL_ROOT_PASSWORD", "LEDGERGUARD_ROOT_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    result = runner.invoke(app, ["cluster", "status"], env={"MYSQL_ROOT_PASSWORD": None})
    assert result.exit_code == 2
    assert "MYSQL_ROOT_PASSWORD is not set" in result.output
    assert "Traceback" not in result.output


def test_port_in_use_is_refused(tmp_path: Path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cluster = LocalCluster(make_settings(tmp_path / "lg", primary_port=port))
        with pytest.raises(PortInUse, match="LEDGERGUARD_PRIMARY_PORT"):
            cluster.up()


def test_missing_binary_names_the_package(tmp_path: Path, in_empty_dir):
    settings = make_settings(tmp_path / "lg", mariadbd_path="/nonexistent/mariadbd")
    with pytest.raises(BinaryNotFound, match="mariadb-server-core"):
        LocalCluster(settings).up()
    env = settings_env(settings) | {"LEDGERGUARD_MARIADBD_PATH": "/nonexistent/mariadbd"}
    result = runner.invoke(app, ["cluster", "up"], env=env)
    assert result.exit_code == 1
    assert "apt-get install" in result.output and "Traceback" not in result.output


def test_datadir_of_another_version_is_refused(tmp_path: Path):
    settings = make_settings(tmp_path / "lg")
    datadir = LocalCluster(settings).specs["primary"].datadir
    (datadir / "mysql").mkdir(parents=True)
    (datadir / "mysql_upgrade_info").write_text("10.6.12-MariaDB")
    with pytest.raises(DatadirMismatch, match=r"10\.6\.12.*cluster reset"):
        LocalCluster(settings).up()


def test_wrong_root_password_is_explained(healthy_cluster: LocalCluster, settings: Settings):
    wrong = settings.model_copy(update={"mysql_root_password": SecretStr("not-the-password")})
    with pytest.raises(AccessDenied, match="cluster reset"):
        LocalCluster(wrong).up()
    assert "MYSQL_ROOT_PASSWORD" in LocalCluster(wrong).status().primary.error


def test_provision_over_tcp_is_idempotent(
    healthy_cluster: LocalCluster, settings: Settings, in_empty_dir
):
    """The Compose path (`cluster provision`) against running servers, here the MariaDB pair."""
    result = runner.invoke(app, ["cluster", "provision"], env=settings_env(settings))
    assert result.exit_code == 0, result.output
    assert "provisioned (mariadb)" in result.output
    assert healthy_cluster.status().healthy
    wrong = runner.invoke(
        app, ["cluster", "provision", "--flavour", "mysql"], env=settings_env(settings)
    )
    assert wrong.exit_code == 1
    assert "--flavour mysql given" in wrong.output


def test_checksum_is_clean_then_finds_a_replica_drift(
    healthy_cluster: LocalCluster, settings: Settings, in_empty_dir
):
    with api_conn(settings) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO transactions (user_id, amount, currency, occurred_at, created_at) "
            "VALUES (8, 1, 'USD', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))"
        )
    healthy_cluster.wait_for_replica(timeout=10)
    env = settings_env(settings)
    clean = runner.invoke(app, ["cluster", "checksum", "--json"], env=env)
    assert clean.exit_code == 0, clean.output
    data = json.loads(clean.stdout)
    assert data["clean"] and data["rows"] > 0 and "transactions" in data["tables"]
    replica = healthy_cluster.specs["replica"]
    with admin_connection(replica, password=healthy_cluster.root_password) as conn:
        row = run(conn, Statement("SELECT MAX(id) AS id FROM ledgerguard.transactions"))[0]
        drift = Statement("UPDATE ledgerguard.transactions SET amount = amount + %s WHERE id = %s")
        run(conn, Statement("SET SESSION sql_log_bin = 0"))
        run(conn, Statement(drift.sql, (1, row["id"])))
    try:
        dirty = runner.invoke(app, ["cluster", "checksum", "--chunk-size", "1000"], env=env)
        assert dirty.exit_code == 1, dirty.output
        assert "DIFFERENT transactions" in dirty.output
    finally:
        with admin_connection(replica, password=healthy_cluster.root_password) as conn:
            run(conn, Statement("SET SESSION sql_log_bin = 0"))
            run(conn, Statement(drift.sql, (-1, row["id"])))
    assert healthy_cluster.checksum().clean


def test_semi_sync_acknowledges_commits(healthy_cluster: LocalCluster, settings: Settings):
    with api_conn(settings) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO transactions (user_id, amount, currency, occurred_at, created_at) "
            "VALUES (7, 1, 'USD', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))"
        )
    assert healthy_cluster.status().primary.semi_sync_active is True
