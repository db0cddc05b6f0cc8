"""Airflow for the DAG tests: a throw-away metadata DB and the project's env for in-process tasks.

`dag.test()` needs a migrated metadata DB (it records the run and its task instances). Airflow
reads `AIRFLOW_HOME` and its database URL once, when first imported, so the session fixture sets
the `AIRFLOW_*` variables before anything here imports `airflow`; test modules import it inside
fixtures and tests only. The `LEDGERGUARD_*` variables are set per test (and undone), so tasks
running in this process build the test cluster's `Settings()` without leaking into other folders.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ledgerguard.orchestration.config import airflow_env, venv_bin
from ledgerguard.settings import Settings


@pytest.fixture(scope="session")
def airflow_test_env(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """The Airflow + LedgerGuard environment of in-process DAG runs, with a migrated DB."""
    env = airflow_env(settings, home=tmp_path_factory.mktemp("airflow-dag-tests"))
    patch = pytest.MonkeyPatch()
    for key, value in env.items():
        if key.startswith("AIRFLOW"):
            patch.setenv(key, value)
    try:
        began = time.monotonic()
        subprocess.run(
            [str(venv_bin() / "airflow"), "db", "migrate"],
            env=env,
            check=True,
            capture_output=True,
            timeout=180,
        )
        print(f"airflow db migrate: {time.monotonic() - began:.1f} s")
        yield env
    finally:
        patch.undo()


@pytest.fixture
def task_env(airflow_test_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The project's settings in this process's environment, as Airflow tasks get them."""
    for key, value in airflow_test_env.items():
        monkeypatch.setenv(key, value)
    return airflow_test_env


@pytest.fixture(scope="session")
def dag_bag(airflow_test_env: dict[str, str]) -> Any:
    """Every DAG of `dags/`, parsed once."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=airflow_test_env["AIRFLOW__CORE__DAGS_FOLDER"])
