"""The local Airflow's configuration, the REST client's run-a-day logic and the task helpers.

No Airflow process here: the REST API is an `httpx.MockTransport` that behaves like the
api-server for the few endpoints we use (the real one is exercised in tests/dags).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from typer.testing import CliRunner

from ledgerguard.cli.airflow import app
from ledgerguard.orchestration.client import AirflowApiError, AirflowClient
from ledgerguard.orchestration.config import (
    REPO_DAGS_FOLDER,
    airflow_env,
    replica_connection_uri,
    write_passwords_file,
)
from ledgerguard.orchestration.runs import run_day
from ledgerguard.orchestration.tasks import bucket_ids, business_day
from ledgerguard.utc import as_utc
from tests.support import make_settings, settings_env


def test_airflow_env_points_everything_at_the_state_dir_and_the_port(tmp_path: Path):
    settings = make_settings(tmp_path, airflow_port=18_123, reports_dir=Path("rel-reports"))
    env = airflow_env(settings)
    home = settings.state_dir / "airflow"
    assert env["AIRFLOW_HOME"] == str(home)
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{home}/airflow.db"
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(REPO_DAGS_FOLDER)
    assert (REPO_DAGS_FOLDER / "02_fraud_analysis_etl.py").exists()
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__API__PORT"] == "18123"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18123/execution/"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"].startswith(str(home))
    # tasks rebuild the same settings, with paths that do not depend on their cwd
    assert env["LEDGERGUARD_PRIMARY_PORT"] == str(settings.primary_port)
    assert env["LEDGERGUARD_REPORTS_DIR"] == str(Path("rel-reports").resolve())
    assert env["LEDGERGUARD_HOME"] == str(settings.state_dir)
    assert env["PATH"].split(":")[0].endswith("bin")


def test_replica_connection_quotes_the_password(tmp_path: Path):
    settings = make_settings(tmp_path, replica_password="p@ss:w/rd%")
    uri = replica_connection_uri(settings)
    assert uri.startswith("mysql://app_user:")
    password = uri.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    assert unquote(password) == "p@ss:w/rd%"
    assert uri.endswith(f"@127.0.0.1:{settings.replica_port}/ledgerguard")


def test_passwords_file_is_private_and_holds_the_configured_login(tmp_path: Path):
    settings = make_settings(tmp_path)
    path = write_passwords_file(settings, tmp_path / "airflow" / "passwords.json")
    assert path.stat().st_mode & 0o777 == 0o600
    assert json.loads(path.read_text()) == {"admin": "t-airflow-secret"}
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]


def test_task_helpers_convert_times_and_plan_buckets():
    class Pendulumish(datetime):
        """Stands in for pendulum.DateTime: a datetime subclass drivers do not know."""

    moment = Pendulumish(2024, 2, 29, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    converted = as_utc(moment)
    assert type(converted) is datetime
    assert converted == datetime(2024, 2, 28, 23, 30, tzinfo=UTC)
    assert business_day(moment) == date(2024, 2, 28)
    assert bucket_ids(3) == [0, 1, 2]
    with pytest.raises(ValueError):
        bucket_ids(0)
    with pytest.raises(ValueError):
        as_utc(datetime(2024, 1, 1))


class FakeAirflow:
    """Just enough of the api-server: login, one DAG, runs by logical date, clear, states."""

    def __init__(self, *, existing_state: str | None = None, day: date = date(2024, 2, 29)) -> None:
        self.day = datetime(day.year, day.month, day.day, tzinfo=UTC)
        self.paused = True
        self.runs: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self.tokens = 0
        self.expire_first_token = False
        if existing_state:
            self.runs["scheduled__2024-02-29"] = {
                "dag_run_id": "scheduled__2024-02-29",
                "logical_date": "2024-02-29T00:00:00Z",
                "state": existing_state,
            }

    def handler(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        self.calls.append(f"{method} {path}")
        if path == "/auth/token":
            body = json.loads(request.content)
            if body != {"username": "admin", "password": "t-airflow-secret"}:
                return httpx.Response(401, json={"detail": "Invalid credentials"})
            self.tokens += 1
            return httpx.Response(201, json={"access_token": f"token-{self.tokens}"})
        token = request.headers.get("Authorization")
        if token != f"Bearer token-{self.tokens}" or (self.expire_first_token and self.tokens == 1):
            return httpx.Response(401, json={"detail": "expired"})
        dag = "/api/v2/dags/02_fraud_analysis_etl"
        if path == dag and method == "GET":
            return httpx.Response(200, json={"dag_id": "02", "is_paused": self.paused})
        if path == dag and method == "PATCH":
            self.paused = json.loads(request.content)["is_paused"]
            return httpx.Response(200, json={"is_paused": self.paused})
        if path == f"{dag}/dagRuns" and method == "POST":
            body = json.loads(request.content)
            assert body["logical_date"] == self.day.isoformat()
            assert body["data_interval_start"] == self.day.isoformat()
            assert body["data_interval_end"] == (self.day + timedelta(days=1)).isoformat()
            if self.runs:
                return httpx.Response(409, json={"detail": "exists"})
            run = {"dag_run_id": "manual__1", "state": "queued", "conf": body["conf"]}
            self.runs["manual__1"] = run
            return httpx.Response(200, json=run)
        if path == f"{dag}/dagRuns" and method == "GET":
            assert request.url.params["logical_date_gte"] == self.day.isoformat()
            return httpx.Response(200, json={"dag_runs": list(self.runs.values())})
        if path.endswith("/clear"):
            self.runs[path.split("/")[-2]]["state"] = "queued"
            return httpx.Response(200, json={})
        if path.endswith("/taskInstances"):
            return httpx.Response(
                200,
                json={
                    "task_instances": [
                        {"task_id": "merge_report", "map_index": -1, "state": "success"},
                        {"task_id": "analyse_bucket", "map_index": 1, "state": "success"},
                    ]
                },
            )
        if path.startswith(f"{dag}/dagRuns/"):
            run = self.runs[path.rsplit("/", 1)[1]]
            if run["state"] == "queued":  # finishes between two polls
                run["state"] = "running"
            elif run["state"] == "running":
                run["state"] = "success"
            return httpx.Response(200, json=run)
        return httpx.Response(404, json={"detail": f"no route {method} {path}"})

    def client(self) -> AirflowClient:
        return AirflowClient(
            "http://airflow.test",
            username="admin",
            password="t-airflow-secret",
            transport=httpx.MockTransport(self.handler),
        )


def _run(fake: FakeAirflow) -> Any:
    with fake.client() as client:
        return run_day(
            client,
            "02_fraud_analysis_etl",
            day=fake.day.date(),
            conf={"buckets": 2},
            timeout=5,
        )


def test_run_day_triggers_the_whole_day_unpauses_and_waits(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("time.sleep", lambda _: None)
    fake = FakeAirflow()
    outcome = _run(fake)
    assert outcome.state == "success" and outcome.succeeded and not outcome.rerun
    assert outcome.tasks == {"merge_report": "success", "analyse_bucket[1]": "success"}
    assert fake.runs["manual__1"]["conf"] == {"buckets": 2}
    assert fake.paused is False


def test_run_day_of_today_allows_the_open_interval(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("time.sleep", lambda _: None)
    fake = FakeAirflow(day=datetime.now(UTC).date())
    assert _run(fake).succeeded
    assert fake.runs["manual__1"]["conf"] == {"buckets": 2, "allow_open_interval": True}


@pytest.mark.parametrize(("existing", "cleared"), [("success", True), ("running", False)])
def test_run_day_reruns_or_joins_the_existing_run_of_the_day(
    monkeypatch: pytest.MonkeyPatch, existing: str, cleared: bool
):
    monkeypatch.setattr("time.sleep", lambda _: None)
    fake = FakeAirflow(existing_state=existing)
    outcome = _run(fake)
    assert outcome.run_id == "scheduled__2024-02-29"
    assert outcome.state == "success"
    assert outcome.rerun is cleared
    assert any(call.endswith("/clear") for call in fake.calls) is cleared


def test_client_logs_in_again_once_when_the_token_expired(monkeypatch: pytest.MonkeyPatch):
    fake = FakeAirflow()
    fake.expire_first_token = True
    with fake.client() as client:
        assert client.dag("02_fraud_analysis_etl") is not None
    assert fake.tokens == 2


def test_client_explains_a_refused_login():
    fake = FakeAirflow()
    with (
        AirflowClient(
            "http://airflow.test",
            username="admin",
            password="wrong",
            transport=httpx.MockTransport(fake.handler),
        ) as client,
        pytest.raises(AirflowApiError, match="AIRFLOW_ADMIN_PASSWORD"),
    ):
        client.dag("02_fraud_analysis_etl")


def test_cli_status_of_a_stopped_airflow_exits_3(tmp_path: Path):
    settings = make_settings(tmp_path)
    result = CliRunner().invoke(app, ["status", "--json"], env=settings_env(settings))
    assert result.exit_code == 3, result.output
    assert json.loads(result.stdout)["running"] is False


def test_cli_trigger_refuses_a_bad_date(tmp_path: Path):
    settings = make_settings(tmp_path)
    result = CliRunner().invoke(
        app,
        ["trigger", "02_fraud_analysis_etl", "--date", "29/02/2024"],
        env=settings_env(settings),
    )
    assert result.exit_code == 2
    assert "YYYY-MM-DD" in result.output


def test_cli_trigger_passes_the_day_and_parsed_conf(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    seen: dict[str, Any] = {}

    def fake_run_day(client: AirflowClient, dag_id: str, **kwargs: Any) -> Any:
        from ledgerguard.orchestration.runs import DayRun

        seen.update(kwargs, dag_id=dag_id)
        return DayRun(dag_id, kwargs["day"], "manual__x", state="failed", rerun=False)

    monkeypatch.setattr("ledgerguard.orchestration.runs.run_day", fake_run_day)
    settings = make_settings(tmp_path)
    result = CliRunner().invoke(
        app,
        ["trigger", "02_fraud_analysis_etl", "--date", "today", "-c", "buckets=8", "--wait"],
        env=settings_env(settings),
    )
    assert result.exit_code == 1, result.output  # --wait and the run failed
    assert seen["dag_id"] == "02_fraud_analysis_etl"
    assert seen["day"] == datetime.now(UTC).date()
    assert seen["conf"] == {"buckets": 8}
    assert seen["wait"] is True
