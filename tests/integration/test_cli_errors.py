"""Commands that need a server, run as a new user would with the cluster down: one clear sentence."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ledgerguard.cluster.local import LocalCluster
from ledgerguard.settings import Settings
from tests.support import make_settings


def _ledgerguard(args: list[str], settings: Settings, cwd: Path) -> subprocess.CompletedProcess:
    """The installed command, as a new user runs it: only `settings` in its environment."""
    ledgerguard = Path(sys.executable).with_name("ledgerguard")
    return subprocess.run(
        [str(ledgerguard), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", **settings.to_env()},
    )


def test_bench_analysis_with_the_cluster_down_names_the_server_and_the_fix(tmp_path: Path):
    settings = make_settings(tmp_path)  # free ports: nothing listens there
    result = _ledgerguard(["bench", "analysis", "--rows", "1000"], settings, tmp_path)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert f"the primary (127.0.0.1:{settings.primary_port}) and" in result.stderr
    assert "ledgerguard cluster up" in result.stderr


def test_bench_analysis_names_a_down_replica_before_generating_anything(
    healthy_cluster: LocalCluster, settings: Settings, tmp_path: Path
):
    """The primary answers, the replica does not: the command stops at once, naming it."""
    alone = make_settings(tmp_path, primary_port=settings.primary_port)
    result = _ledgerguard(["bench", "analysis", "--rows", "1000"], alone, tmp_path)
    assert result.returncode == 1, result.stderr[-2000:]
    message = " ".join(result.stderr.split())
    assert f"the replica (127.0.0.1:{alone.replica_port}) is not running" in message, message
    assert "ledgerguard cluster up" in message and "Traceback" not in message
    assert "loading up to" not in message  # stopped before any work
