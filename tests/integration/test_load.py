"""`ledgerguard load` and `ledgerguard bench ingest` for a few seconds against the session's API.

Smoke tests only: they assert that the commands run, report what they promise and see no errors,
never how fast anything is (the machine is shared; timings are for benchmarks/README.md).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ledgerguard.cli.main import app as cli
from ledgerguard.cluster.admin import admin_connection, run
from ledgerguard.cluster.local import LocalCluster
from ledgerguard.db.dialect import Statement
from ledgerguard.settings import Settings
from tests.support import free_ports, settings_env

runner = CliRunner()

#: Customers of these tests, far from the ids other tests count rows for.
FIRST_USER_ID = "700000000"


@pytest.fixture
def in_empty_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the CLI where no `.env` is found, so only the test's environment counts."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_load_closed_loop_json(
    api_url: str, api_key: str, settings: Settings, in_empty_dir: Path
) -> None:
    result = runner.invoke(
        cli,
        [
            *(
                "load",
                "--duration",
                "2",
                "--users",
                "4",
                "--json",
                "-",
                "--no-live",
                "--large-share",
                "0",
            ),
            *("--api", api_url, "--key", api_key, "--first-user-id", FIRST_USER_ID),
        ],
        env=settings_env(settings),
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # stdout carries only the JSON
    assert report["mode"] == "closed" and report["users"] == 4
    assert report["errors"] == 0 and report["status_counts"] == {"201": report["ok"]}
    assert report["ok"] > 0 and report["tps"] > 0
    latency = report["latency_ms"]
    assert {"p50", "p95", "p99", "max"} <= set(latency)
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]
    assert report["client"]["cpu_seconds"] >= 0 and report["timeline"]


def test_load_open_loop_with_idempotency_keys(
    api_url: str, api_key: str, settings: Settings, in_empty_dir: Path
) -> None:
    out = in_empty_dir / "report.json"
    result = runner.invoke(
        cli,
        [
            *("load", "--duration", "2", "--users", "4", "--rate", "100", "--json", str(out)),
            *("--idempotency-share", "0.5", "--no-live", "--first-user-id", FIRST_USER_ID),
        ],
        env=settings_env(settings)
        | {"LEDGERGUARD_API_URL": api_url, "LEDGERGUARD_API_KEY": api_key},
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["mode"] == "open" and report["rate_target"] == 100
    assert report["errors"] == 0 and report["ok"] > 50


def test_load_without_api_is_a_clear_error(
    api_key: str, settings: Settings, in_empty_dir: Path
) -> None:
    (port,) = free_ports(1)
    result = runner.invoke(
        cli,
        ["load", "--duration", "1", "--api", f"http://127.0.0.1:{port}", "--key", api_key],
        env=settings_env(settings),
    )
    assert result.exit_code == 1
    assert "cannot connect" in result.output and "Traceback" not in result.output


def test_bench_ingest_smoke(
    healthy_cluster: LocalCluster, api_url: str, settings: Settings, in_empty_dir: Path
) -> None:
    has_sysbench = shutil.which("sysbench") is not None
    args = ["bench", "ingest", "--duration", "2", "--warmup", "1", "--users", "10", "--no-live"]
    if not has_sysbench:
        args.append("--no-ceiling")  # scripts/setup.sh does not install sysbench (yet)
    result = runner.invoke(cli, args, env=settings_env(settings))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["config"]["started_api"] is False  # it used the session's API
    api = report["api"]
    assert api["errors"] == 0 and api["ok"] > 0 and api["latency_ms"]["p99"] is not None
    assert report["durability"]["primary"]["innodb_flush_log_at_trx_commit"] == "1"
    assert report["durability"]["primary"]["sync_binlog"] == "1"
    assert report["durability"]["replica"]["read_only"] == "ON"
    assert report["replica_lag"]["samples"] > 0 and report["replica_lag"]["errors"] == []
    assert set(report["targets"]) == {"tps", "p99_ms", "ratio", "replica_lag_p99_s"}
    if has_sysbench:
        assert report["ceiling"]["tps"] > 0 and report["ceiling"]["errors"] == 0
        assert report["ratio"] > 0
    # the ceiling's schema and account are gone, on both servers
    for role in ("primary", "replica"):
        with admin_connection(
            healthy_cluster.specs[role], password=healthy_cluster.root_password
        ) as conn:
            assert not run(conn, Statement("SHOW DATABASES LIKE 'ledgerguard_bench'"))
            assert not run(conn, Statement("SELECT 1 FROM mysql.user WHERE user = 'lg_bench'"))


@pytest.mark.skipif(shutil.which("sysbench") is None, reason="scripts/setup.sh installs sysbench")
def test_sysbench_gets_its_password_from_the_environment_not_its_command_line(
    healthy_cluster: LocalCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ps` shows every user a command line: the ceiling's password travels in MYSQL_PWD."""
    from ledgerguard.load.bench.ceiling import measure_ceiling

    real, log = shutil.which("sysbench"), tmp_path / "sysbench.log"
    wrapper = tmp_path / "bin" / "sysbench"
    wrapper.parent.mkdir()
    wrapper.write_text(
        "#!/bin/sh\n"
        f'printf "argv: %s\\n" "$*" >> {log}\n'
        f'[ -n "$MYSQL_PWD" ] && echo "MYSQL_PWD set" >> {log}\n'
        f'exec {real} "$@"\n'
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper.parent}:{os.environ['PATH']}")
    result = measure_ceiling(
        healthy_cluster.specs["primary"],
        root_password=healthy_cluster.root_password,
        threads=1,
        duration=1,
        warmup=0,
        progress=lambda _: None,
    )
    assert result.transactions > 0 and result.errors == 0  # it logged in
    lines = log.read_text().splitlines()
    argvs = [line for line in lines if line.startswith("argv: ")]
    assert len(argvs) == 2 and lines.count("MYSQL_PWD set") == 2, lines
    assert not any("password" in line for line in argvs), argvs
