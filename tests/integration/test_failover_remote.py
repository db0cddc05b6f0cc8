"""Failover when the old primary is not a process this machine runs (a remote server).

A cluster of its own (real servers on free ports); its primary is then moved "elsewhere": killed
and its folder moved out of the state directory, so nothing here can stop it by pid, and its
address answers nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ledgerguard.cli.main import app
from ledgerguard.cluster.admin import admin_connection, run
from ledgerguard.cluster.local import LocalCluster
from ledgerguard.db.dialect import Statement
from ledgerguard.db.topology import load_topology
from tests.support import make_settings, settings_env

runner = CliRunner()


def _read_only(cluster: LocalCluster, role: str) -> str:
    with admin_connection(cluster.specs[role], password=cluster.root_password) as conn:
        (row,) = run(conn, Statement("SELECT @@GLOBAL.read_only AS ro"))
    return str(row["ro"])


def test_an_unreachable_remote_old_primary_needs_force(tmp_path: Path):
    settings = make_settings(tmp_path / "lg")
    env = settings_env(settings)
    cluster = LocalCluster(settings)
    try:
        cluster.up()
        cluster.server("primary").kill()
        cluster.specs["primary"].base_dir.rename(tmp_path / "elsewhere")

        dry = runner.invoke(app, ["cluster", "failover", "--dry-run", "--json"], env=env)
        assert dry.exit_code == 0, dry.output
        planned = json.loads(dry.stdout)
        assert planned["remote"] is True and planned["fence"] is False
        assert planned["old_primary"] == f"127.0.0.1:{settings.primary_port}"

        refused = runner.invoke(app, ["cluster", "failover"], env=env)
        assert refused.exit_code == 1, refused.output
        message = " ".join(refused.output.split())
        assert "Traceback" not in refused.output
        assert "is not a server this machine runs" in message, message
        assert "could not be reached to set it read-only" in message, message
        assert "SET GLOBAL read_only=ON" in message and "--force" in message, message
        assert load_topology(settings).epoch == 0
        assert _read_only(LocalCluster(settings), "replica") == "1"  # nothing promoted

        forced = runner.invoke(app, ["cluster", "failover", "--force"], env=env)
        assert forced.exit_code == 0, forced.output
        assert load_topology(settings).epoch == 1
        promoted = LocalCluster(settings)
        assert promoted.specs["primary"].port == settings.replica_port
        assert _read_only(promoted, "primary") == "0"
    finally:
        for role in ("primary", "replica"):
            LocalCluster(settings).server(role).kill()
