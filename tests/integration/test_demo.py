"""`ledgerguard demo` end to end on the test cluster (what `make demo` runs)."""

from __future__ import annotations

import httpx
import pytest
from typer.testing import CliRunner

from ledgerguard.cli.main import app
from ledgerguard.cluster.local import LocalCluster
from ledgerguard.settings import Settings
from tests.support import settings_env


def test_demo_posts_the_example_and_reads_it_from_the_replica(
    healthy_cluster: LocalCluster,
    settings: Settings,
    api_url: str,
    tmp_path,
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.chdir(tmp_path)
    # monitoring and Airflow have tests of their own (tests/integration/test_monitoring.py,
    # tests/dags/test_airflow_standalone.py); here the demo's own steps
    from ledgerguard.realtime.process import stop_scorer

    args = ["demo", "--no-monitoring", "--no-airflow"]
    try:
        result = CliRunner().invoke(app, args, env=settings_env(settings))
        assert result.exit_code == 0, result.output
        assert "→ 201" in result.output
        assert "from the replica: user_id=999 amount=15000.00 USD" in result.output
        assert "healthy" in result.output
        key_file = settings.state_dir / "demo-api-key"
        assert key_file.stat().st_mode & 0o777 == 0o600
        first_key = key_file.read_text()
        again = CliRunner().invoke(app, args, env=settings_env(settings))
        assert again.exit_code == 0, again.output
        assert key_file.read_text() == first_key  # the active key is reused, not re-created
        # the analyst account of the review app: printed with its address, reused, and it logs in
        password = (settings.state_dir / "demo-analyst-password").read_text().strip()
        assert f"{api_url}/review (login demo-analyst / {password})" in again.output
        from tests.web.support import login

        with httpx.Client(base_url=api_url, timeout=30) as client:
            assert login(client, "demo-analyst", password).status_code == 303
    finally:
        stop_scorer(settings)  # `demo` runs `up`, which starts the streaming scorer


def test_up_with_monitoring_then_status(
    healthy_cluster: LocalCluster,
    settings: Settings,
    api_url: str,
    tmp_path,
    monkeypatch: pytest.MonkeyPatch,
):
    """`ledgerguard up --with-monitoring` on a running platform starts only what is missing."""
    import json

    from ledgerguard.monitoring.local import LocalMonitoring
    from ledgerguard.realtime.process import running_pid, stop_scorer

    monkeypatch.chdir(tmp_path)
    env = settings_env(settings)
    try:
        up = CliRunner().invoke(app, ["up", "--with-monitoring"], env=env)
        assert up.exit_code == 0, up.output
        assert "API already running" in up.output
        assert "scorer started" in up.output
        status = CliRunner().invoke(app, ["status", "--json"], env=env)
        data = json.loads(status.stdout)
        assert data["cluster"]["healthy"] is True, data
        scorer = data["components"]["scorer"]
        assert scorer["up"] is True and "lag" in scorer["detail"], scorer
    finally:
        LocalMonitoring(settings).down()
        stop_scorer(settings)
    assert running_pid(settings) is None
