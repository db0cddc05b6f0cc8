"""Airflow tasks shared by several DAG files (this module imports `airflow.sdk`).

Only the files in `dags/` import it; the rest of `ledgerguard` never imports Airflow. Every
task here is thin: it reads the run's context and calls `ledgerguard.orchestration.tasks`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import task


def replica_health_check_task() -> Any:
    """The `replica_health_check` task: every DAG that reads the replica starts with it.

    Waits (bounded by the `freshness_timeout_seconds` param) until the replica has applied the
    primary's GTID position read after the data interval's end, and fails otherwise, so nothing
    downstream reads stale data (rule: `ledgerguard.cluster.health.check_replica_fresh`). Needs
    the DAG params `freshness_timeout_seconds` and `allow_open_interval`.
    """

    @task(task_id="replica_health_check", retries=0)
    def replica_health_check(
        data_interval_end: datetime | None = None, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Wait (bounded) until the replica covers the interval; fail otherwise."""
        from ledgerguard.orchestration.tasks import replica_health

        assert data_interval_end is not None and params is not None
        return replica_health(
            until=data_interval_end,
            timeout=float(params["freshness_timeout_seconds"]),
            allow_open_interval=bool(params["allow_open_interval"]),
        )

    return replica_health_check
