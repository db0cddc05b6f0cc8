"""`ledgerguard bench api-cpu` and `bench key-cache-refresh` against the session's cluster.

Smoke tests only: they assert that the commands run on real servers and report what they
promise, never how fast anything is (figures belong in benchmarks/README.md).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ledgerguard.cli.main import app as cli
from ledgerguard.cluster.local import LocalCluster
from ledgerguard.settings import Settings
from tests.support import api_conn, settings_env

runner = CliRunner()


@pytest.fixture
def in_empty_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the CLI where no `.env` is found, so only the test's environment counts."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _transactions(settings: Settings) -> int:
    with api_conn(settings) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM transactions")
        return cur.fetchone()[0]


@pytest.mark.parametrize("fast_path", ["--fast-path", "--no-fast-path"])
def test_bench_api_cpu_posts_every_request_through_the_app(
    healthy_cluster: LocalCluster, settings: Settings, in_empty_dir: Path, fast_path: str
) -> None:
    before = _transactions(settings)
    args = ["bench", "api-cpu", "--requests", "60", "--users", "4", fast_path]
    result = runner.invoke(cli, args, env=settings_env(settings))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["fast_path"] is (fast_path == "--fast-path")
    assert report["requests"] == 60 and report["users"] == 4
    assert report["cpu_us_per_request"] > 0 and report["rows_per_commit"] >= 1
    # a warm-up and the measured phase, each request a committed transaction (201)
    assert _transactions(settings) - before == 120
    # the metrics folder it made for Prometheus' multiprocess mode is gone again
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ


def test_bench_key_cache_refresh_batches_the_refresh_of_every_key(
    healthy_cluster: LocalCluster, settings: Settings, in_empty_dir: Path
) -> None:
    args = ["bench", "key-cache-refresh", "--keys", "6", "--rounds", "3"]
    result = runner.invoke(cli, args, env=settings_env(settings))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["keys"] == 6 and report["rounds"] == 3
    # every key expired: the first lookup refreshes the others in the same query
    assert 1 <= report["queries_per_refresh"] < 6
    assert report["cpu_ms_per_refresh"] > 0


def test_bench_api_cpu_names_an_unreadable_key_file(
    healthy_cluster: LocalCluster, settings: Settings, in_empty_dir: Path
) -> None:
    args = ["bench", "api-cpu", "--requests", "10", "--key-file", str(in_empty_dir / "none")]
    result = runner.invoke(cli, args, env=settings_env(settings))
    assert result.exit_code == 1
    assert "cannot read API keys" in result.output and "Traceback" not in result.output
