"""A small client of the Airflow 3 REST API v2, logged in with the simple auth manager.

Only what LedgerGuard drives: find a DAG, pause/unpause it, trigger a run with an explicit data
interval, find and clear a run, read run and task states. Authentication is a JWT from
`POST /auth/token` (username/password), sent as a Bearer token and fetched again once if the
api-server answers 401 (tokens expire; the api-server may have restarted with a new secret).
"""

from __future__ import annotations

import time
from datetime import datetime
from types import TracebackType
from typing import Any

import httpx

from ledgerguard.orchestration.config import base_url
from ledgerguard.orchestration.process import AirflowError
from ledgerguard.settings import Settings
from ledgerguard.utc import as_utc

#: Run states after which nothing more happens to a run.
FINISHED = frozenset({"success", "failed"})


class AirflowApiError(AirflowError):
    """The REST API refused a request; the message carries its status and detail."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


def _iso(moment: datetime) -> str:
    return as_utc(moment).isoformat()


class AirflowClient:
    """The REST API of one api-server; use as a context manager to close the connection pool."""

    def __init__(
        self,
        base_url: str,
        *,
        username: str,
        password: str,
        timeout: float = 15.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(base_url=base_url, timeout=timeout, transport=transport)
        self._username = username
        self._password = password
        self._token: str | None = None

    def __enter__(self) -> AirflowClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- plumbing ------------------------------------------------------------------------------
    def _login(self) -> str:
        try:
            response = self._http.post(
                "/auth/token", json={"username": self._username, "password": self._password}
            )
        except httpx.HTTPError as exc:
            raise AirflowApiError(
                f"cannot reach Airflow at {self._http.base_url}: {exc}; is it running "
                "(`ledgerguard airflow status`)?"
            ) from exc
        if response.status_code in (400, 401, 403):
            raise AirflowApiError(
                f"Airflow refused the login of {self._username!r}: check AIRFLOW_ADMIN_USER / "
                "AIRFLOW_ADMIN_PASSWORD, then restart it (`ledgerguard airflow down` / `up`)",
                status_code=response.status_code,
            )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One authenticated request; 4xx/5xx become `AirflowApiError` (404 and 409 included)."""
        for attempt in range(2):
            if self._token is None:
                self._token = self._login()
            try:
                response = self._http.request(
                    method, path, headers={"Authorization": f"Bearer {self._token}"}, **kwargs
                )
            except httpx.TimeoutException as exc:
                # a busy api-server answers late; reads are safe to ask again once
                if method == "GET" and attempt == 0:
                    continue
                raise AirflowApiError(f"{method} {path} failed: timed out") from exc
            except httpx.HTTPError as exc:
                raise AirflowApiError(f"{method} {path} failed: {exc}") from exc
            if response.status_code == 401 and attempt == 0:
                self._token = None
                continue
            if response.is_error:
                raise AirflowApiError(
                    f"{method} {path} -> {response.status_code}: {_detail(response)}",
                    status_code=response.status_code,
                )
            return response
        raise AssertionError("unreachable")

    # --- DAGs ----------------------------------------------------------------------------------
    def dag(self, dag_id: str) -> dict[str, Any] | None:
        """The DAG as the api-server knows it, or None if it has not been parsed (yet)."""
        try:
            return dict(self.request("GET", f"/api/v2/dags/{dag_id}").json())
        except AirflowApiError as exc:
            if exc.status_code == 404:
                return None
            raise

    def import_errors(self) -> list[str]:
        """Import errors of the DAG files, as `file: first line of the error`."""
        data = self.request("GET", "/api/v2/importErrors").json()
        errors = []
        for item in data.get("import_errors", []):
            lines = str(item.get("stack_trace") or "").strip().splitlines()
            errors.append(f"{item.get('filename')}: {lines[-1] if lines else '?'}")
        return errors

    def wait_for_dag(self, dag_id: str, *, timeout: float, poll: float = 1.0) -> dict[str, Any]:
        """Wait until the dag-processor has parsed `dag_id`; name the import errors if not."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.dag(dag_id)
            if found is not None:
                return found
            if time.monotonic() >= deadline:
                errors = self.import_errors()
                raise AirflowApiError(
                    f"Airflow does not know the DAG {dag_id!r} after {timeout:g} s"
                    + (f"; import errors: {'; '.join(errors)}" if errors else "")
                    + "; check the DAGs folder and the dag-processor's log",
                    status_code=404,
                )
            time.sleep(poll)

    def set_paused(self, dag_id: str, *, paused: bool) -> None:
        self.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": paused})

    # --- runs ----------------------------------------------------------------------------------
    def trigger(
        self,
        dag_id: str,
        *,
        logical_date: datetime,
        data_interval: tuple[datetime, datetime],
        conf: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create a run; raises `AirflowApiError` with status 409 if the logical date has one."""
        body = {
            "logical_date": _iso(logical_date),
            "data_interval_start": _iso(data_interval[0]),
            "data_interval_end": _iso(data_interval[1]),
            "conf": conf or {},
        }
        return dict(self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body).json())

    def find_run(self, dag_id: str, *, logical_date: datetime) -> dict[str, Any] | None:
        """The run of `dag_id` at exactly `logical_date`, if any."""
        params = {"logical_date_gte": _iso(logical_date), "logical_date_lte": _iso(logical_date)}
        data = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns", params=params).json()
        runs = data.get("dag_runs", [])
        return dict(runs[0]) if runs else None

    def clear_run(self, dag_id: str, run_id: str) -> None:
        """Run every task of an existing run again (the run keeps its interval and conf)."""
        self.request(
            "POST", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/clear", json={"dry_run": False}
        )

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}").json())

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        """`task_id` (with `[map_index]` for mapped tasks) -> state, for messages."""
        data = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances").json()
        states = {}
        for ti in data.get("task_instances", []):
            index = ti.get("map_index", -1)
            name = ti["task_id"] + (f"[{index}]" if index is not None and index >= 0 else "")
            states[name] = str(ti.get("state"))
        return states

    def wait_for_run(
        self, dag_id: str, run_id: str, *, timeout: float, poll: float = 2.0
    ) -> dict[str, Any]:
        """Poll until the run is finished; raises `AirflowApiError` after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            current = self.run(dag_id, run_id)
            if current.get("state") in FINISHED:
                return current
            if time.monotonic() >= deadline:
                raise AirflowApiError(
                    f"run {run_id} of {dag_id} is still {current.get('state')} after "
                    f"{timeout:g} s; tasks: {self.task_states(dag_id, run_id)}"
                )
            time.sleep(poll)


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text
    return str(detail)[:500]


def local_client(settings: Settings, *, timeout: float = 15.0) -> AirflowClient:
    """A client of the local Airflow (`ledgerguard airflow up`) with the configured login."""
    return AirflowClient(
        base_url(settings),
        username=settings.airflow_admin_user,
        password=settings.airflow_admin_password.get_secret_value(),
        timeout=timeout,
    )
