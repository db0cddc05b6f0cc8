"""The real monitoring stack against the session cluster: exporters, heartbeat, Prometheus.

Prometheus and both mysqld-exporters run on free ports with a 1 s scrape interval; every PromQL
expression of the dashboards and alert rules is evaluated by that Prometheus, and the heartbeat
lag is shown to grow while a replication thread is stopped (when Seconds_Behind_Master says
nothing).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import typer
from typer.testing import CliRunner

from ledgerguard.cli import monitoring as monitoring_cli
from ledgerguard.cli import status as status_cli
from ledgerguard.cluster.admin import admin_connection, run, scalar
from ledgerguard.cluster.heartbeat import EVENT_SCHEDULER
from ledgerguard.cluster.local import LocalCluster
from ledgerguard.db.dialect import Statement
from ledgerguard.monitoring.expressions import dashboard_queries
from ledgerguard.monitoring.local import LocalMonitoring
from ledgerguard.monitoring.stack import stack_status
from ledgerguard.settings import Settings
from tests.support import free_ports

#: Metrics only the API exports: their queries must parse, but have data only with the API up.
API_METRICS = ("ledgerguard_http_", "ledgerguard_transactions_", "ledgerguard_db_pool_")
#: The streaming scorer's metrics: no scorer runs in this module (tests/integration/test_realtime.py
#: reads them from the scorer itself); their panels must parse, not have data.
SCORER_METRICS = ("ledgerguard_scorer_",)


# --- helpers ------------------------------------------------------------------------------------
def wait_for(condition: Callable[[], Any], *, timeout: float = 60, what: str = "") -> Any:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what or condition}")
        time.sleep(0.25)


def query(prometheus: str, expr: str) -> dict[str, Any]:
    """The raw answer of /api/v1/query (status, data or errorType/error)."""
    return httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=5).json()


def samples(prometheus: str, expr: str) -> list[tuple[dict[str, str], float]]:
    answer = query(prometheus, expr)
    assert answer["status"] == "success", (expr, answer)
    result = answer["data"]["result"]
    if answer["data"]["resultType"] == "scalar":
        return [({}, float(result[1]))]
    return [(item["metric"], float(item["value"][1])) for item in result]


def single(prometheus: str, expr: str) -> float | None:
    found = samples(prometheus, expr)
    return found[0][1] if len(found) == 1 else None


# --- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def heartbeat_cluster(cluster: LocalCluster) -> LocalCluster:
    """The session cluster; `cluster up` installed the heartbeat and the monitoring grants."""
    if not cluster.status().healthy:
        cluster.up()
    with admin_connection(cluster.specs["primary"], password=cluster.root_password) as conn:
        assert scalar(conn, EVENT_SCHEDULER) == "ON"
    cluster.wait_for_replica(timeout=30)
    return cluster


@pytest.fixture(scope="module")
def monitoring(settings: Settings, heartbeat_cluster: LocalCluster) -> Iterator[LocalMonitoring]:
    """Prometheus and both exporters on free ports, scraping every second, and the binlog
    archiver."""
    prometheus_port, primary_exporter, replica_exporter, airflow_port = free_ports(4)
    local = LocalMonitoring(
        settings.model_copy(
            update={
                "prometheus_port": prometheus_port,
                "primary_exporter_port": primary_exporter,
                "replica_exporter_port": replica_exporter,
                "airflow_port": airflow_port,
                "scrape_interval_seconds": 1,
            }
        )
    )
    from ledgerguard.backup.archiver import start_archiver, stop_archiver

    try:
        start_archiver(local.settings)  # the backup panels and rules read its /metrics
        local.up()
        yield local
    finally:
        local.down()
        stop_archiver(local.settings)


@pytest.fixture(scope="module")
def prometheus(monitoring: LocalMonitoring) -> str:
    url = monitoring.prometheus().url
    wait_for(
        lambda: len([v for _, v in samples(url, "mysql_up") if v == 1]) == 2,
        what="mysql_up == 1 for both servers",
    )
    return url


def _lag(prometheus: str) -> float | None:
    return single(prometheus, "ledgerguard:mysql_replication_lag_seconds")


# --- tests --------------------------------------------------------------------------------------
def test_both_exporters_report_their_server_up(prometheus: str, settings: Settings):
    found = {labels["role"]: (labels, value) for labels, value in samples(prometheus, "mysql_up")}
    assert set(found) == {"primary", "replica"}
    primary, replica = found["primary"][0], found["replica"][0]
    assert primary["job"] == "mysql-primary"
    assert primary["instance"] == f"{settings.primary_host}:{settings.primary_port}"
    assert replica["job"] == "mysql-replica"
    assert replica["instance"] == f"{settings.replica_host}:{settings.replica_port}"
    assert all(value == 1 for _, value in found.values())
    # the exporter's real names on MariaDB, and the flavour-neutral names the rules record
    for metric in ("mysql_slave_status_slave_io_running", "mysql_slave_status_slave_sql_running"):
        threads = samples(prometheus, metric)
        assert [(labels["role"], value) for labels, value in threads] == [("replica", 1.0)]
    recorded = wait_for(
        lambda: samples(prometheus, "ledgerguard:mysql_replica_io_running"), what="recording"
    )
    assert [value for _, value in recorded] == [1.0]


def test_heartbeat_lag_is_exported_from_the_replica(prometheus: str):
    lag = wait_for(lambda: _lag(prometheus) is not None and _lag(prometheus), what="lag")
    assert 0 <= lag < 5
    (labels, _), *others = samples(prometheus, "ledgerguard:mysql_replication_lag_seconds")
    assert not others and labels["role"] == "replica" and "server_id" not in labels


def test_every_rule_loads_and_evaluates_without_error(prometheus: str):
    def evaluated() -> list[dict[str, Any]] | None:
        groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=5).json()["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return rules if all(rule["health"] != "unknown" for rule in rules) else None

    rules = wait_for(evaluated, what="every rule evaluated once")
    names = {rule["name"] for rule in rules}
    assert {"PrimaryDown", "ReplicationLagHigh", "APIHighLatencyP99"} <= names
    assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []
    firing = {r["name"] for r in rules if r["type"] == "alerting" and r["state"] == "firing"}
    assert not firing & {"PrimaryDown", "ReplicaDown", "ReplicationBroken"}


def test_every_dashboard_query_parses_and_database_ones_have_data(prometheus: str):
    queries = dashboard_queries()
    errors = []
    for panel in queries:
        answer = query(prometheus, panel.promql)
        if answer["status"] != "success":
            errors.append((panel.dashboard, panel.panel, panel.promql, answer.get("error")))
    assert errors == []

    def empty() -> list[tuple[str, str]]:
        return [
            (panel.panel, panel.promql)
            for panel in queries
            if not any(metric in panel.expr for metric in (*API_METRICS, *SCORER_METRICS))
            and not samples(prometheus, panel.promql)
        ]

    # rates need two samples inside their window: give the 1 s scrapes a few seconds
    deadline = time.monotonic() + 15
    while (missing := empty()) and time.monotonic() < deadline:
        time.sleep(1)
    assert missing == []


@pytest.mark.parametrize("thread", ["IO_THREAD", "SQL_THREAD"])
def test_heartbeat_lag_grows_while_a_replication_thread_is_stopped(
    prometheus: str, heartbeat_cluster: LocalCluster, thread: str
):
    metric = f"mysql_slave_status_slave_{thread.split('_')[0].lower()}_running"
    wait_for(lambda: (_lag(prometheus) or 99) < 3, what="a healthy lag first")
    replica = heartbeat_cluster.specs["replica"]
    with admin_connection(replica, password=heartbeat_cluster.root_password) as conn:
        run(conn, Statement(f"STOP SLAVE {thread}"))
    try:
        wait_for(lambda: (_lag(prometheus) or 0) > 4, what="the heartbeat lag to pass 4 s")
        assert single(prometheus, metric) == 0
        # what the heartbeat is for: Seconds_Behind_Master is NULL (no sample) meanwhile
        assert samples(prometheus, "mysql_slave_status_seconds_behind_master") == []
    finally:
        with admin_connection(replica, password=heartbeat_cluster.root_password) as conn:
            run(conn, Statement(f"START SLAVE {thread}"))
    wait_for(lambda: (_lag(prometheus) or 99) < 3, what="the lag to recover")
    assert single(prometheus, metric) == 1


def test_stack_status_sees_cluster_replication_and_monitoring(monitoring: LocalMonitoring):
    data = stack_status(monitoring.settings)
    components = data["components"]
    for name in (
        "primary",
        "replica",
        "replication",
        "mysqld-exporter-primary",
        "mysqld-exporter-replica",
        "prometheus",
    ):
        assert components[name]["up"], (name, components[name])
    assert components["airflow"]["up"] is False  # nothing listens on its free port
    assert components["binlog-archive"]["address"].endswith("/metrics")  # the fixture's archiver
    assert 0 <= data["replication"]["heartbeat_lag_seconds"] < 5
    assert data["replication"]["gtid_gap"] is not None
    assert {t["job"] for t in data["prometheus"]["targets"]} >= {"mysql-primary", "mysql-replica"}
    assert data["healthy"] is False


def _cli() -> typer.Typer:
    """The commands as cli/main.py registers them."""
    cli = typer.Typer()
    cli.add_typer(monitoring_cli.app, name="monitoring")
    cli.command(name="status")(status_cli.stack_status)
    return cli


def test_cli_status_commands(monitoring: LocalMonitoring):
    runner = CliRunner()
    result = runner.invoke(_cli(), ["monitoring", "status", "--json"], obj=monitoring.settings)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["healthy"] and set(data["processes"]) == {
        "prometheus",
        "mysqld-exporter-primary",
        "mysqld-exporter-replica",
    }

    result = runner.invoke(_cli(), ["monitoring", "up"], obj=monitoring.settings)
    assert result.exit_code == 0, result.output
    assert "already running" in result.output

    result = runner.invoke(_cli(), ["status", "--json"], obj=monitoring.settings)
    data = json.loads(result.stdout)
    assert result.exit_code == (0 if data["healthy"] else 3), result.output
    assert data["components"]["replica"]["up"] is True

    result = runner.invoke(_cli(), ["status"], obj=monitoring.settings)
    assert "LedgerGuard stack" in result.output and "prometheus" in result.output


def test_prometheus_scrapes_the_api_request_counter(api_url: str, prometheus: str):
    """The API's own metrics reach Prometheus (job `ledgerguard-api`)."""
    for _ in range(3):
        assert httpx.get(f"{api_url}/health", timeout=5).status_code == 200
    expr = 'sum(ledgerguard_http_requests_total{route="/health", status="200"})'
    wait_for(lambda: (single(prometheus, expr) or 0) >= 3, what="the API's request counter")
    assert single(prometheus, 'up{job="ledgerguard-api"}') == 1
