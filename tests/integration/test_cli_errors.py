"""Commands that need a server, run as a new user would with the cluster down: one clear sentence."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import make_settings


def test_bench_analysis_with_the_cluster_down_names_the_server_and_the_fix(tmp_path: Path):
    settings = make_settings(tmp_path)  # free ports: nothing listens there
    ledgerguard = Path(sys.executable).with_name("ledgerguard")
    result = subprocess.run(
        [str(ledgerguard), "bench", "analysis", "--rows", "1000"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", **settings.to_env()},
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert f"the primary (127.0.0.1:{settings.primary_port}) and" in result.stderr
    assert "ledgerguard cluster up" in result.stderr
