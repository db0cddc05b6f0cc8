"""The real thing: `ledgerguard airflow up` starts `airflow standalone` on a free port, `trigger`
runs `02_fraud_analysis_etl` through the REST API, and the report appears; then `down`.

Slow (~1 min on 2 cores: ~20 s to start, the run, ~8 s to stop) and memory-hungry (~1.1 GB).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from ledgerguard.cli.airflow import app
from ledgerguard.cluster.local import LocalCluster
from ledgerguard.orchestration.process import airflow_paths, running_pid, stop_airflow
from ledgerguard.settings import Settings
from tests.dags.support import insert_transaction, report_line, requires_airflow, unique_user_id
from tests.support import free_ports, settings_env

pytestmark = requires_airflow


@pytest.mark.slow
def test_standalone_runs_the_fraud_etl_through_the_rest_api(
    healthy_cluster: LocalCluster, settings: Settings
):
    local = settings.model_copy(update={"airflow_port": free_ports(1)[0]})
    env = settings_env(local)
    # yesterday: the run a freshly unpaused daily DAG schedules anyway, so no second run queues
    day = datetime.now(UTC).date() - timedelta(days=1)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    user_id = unique_user_id()
    tx_id = insert_transaction(
        local,
        user_id=user_id,
        amount="15000.00",
        currency="USD",
        occurred_at=start + timedelta(hours=20),
    )
    runner = CliRunner()
    began = time.monotonic()
    try:
        up = runner.invoke(app, ["up"], env=env)
        assert up.exit_code == 0, up.output
        started = time.monotonic()
        print(f"airflow up: {started - began:.1f} s")
        assert airflow_paths(local).passwords_file.stat().st_mode & 0o777 == 0o600

        status = runner.invoke(app, ["status", "--json"], env=env)
        assert status.exit_code == 0, status.output
        assert json.loads(status.stdout)["healthy"] is True

        triggered = runner.invoke(
            app,
            [
                "trigger",
                "02_fraud_analysis_etl",
                "--date",
                day.isoformat(),
                "--conf",
                "buckets=2",
                "--wait",
                "--timeout",
                "120",
                "--json",
            ],
            env=env,
        )
        print(f"trigger --wait: {time.monotonic() - started:.1f} s")
        assert triggered.exit_code == 0, triggered.output
        outcome = json.loads(triggered.stdout)
        assert outcome["state"] == "success", outcome
        assert outcome["tasks"]["analyse_bucket[1]"] == "success"
        report = local.reports_dir / f"fraud_report_{day.isoformat()}.csv"
        assert report_line(report, tx_id) == f"{tx_id},{user_id},15000.00,USD,FLAGGED_FRAUD"
    finally:
        stopping = time.monotonic()
        down = runner.invoke(app, ["down"], env=env)
        print(f"airflow down: {time.monotonic() - stopping:.1f} s")
        stop_airflow(local)  # in case `down` itself failed
    assert down.exit_code == 0, down.output
    assert running_pid(local) is None
