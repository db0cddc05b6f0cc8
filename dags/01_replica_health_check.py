"""01_replica_health_check: is the read replica fresh enough for analytics?"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import CronDataIntervalTimetable, Param, dag

from ledgerguard.orchestration.dag_tasks import replica_health_check_task


@dag(
    dag_id="01_replica_health_check",
    schedule=CronDataIntervalTimetable("@hourly", timezone="UTC"),
    start_date=datetime(2020, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["ledgerguard", "replica"],
    params={
        "freshness_timeout_seconds": Param(600, type="number", minimum=1, maximum=3600),
        "allow_open_interval": Param(False, type="boolean"),
    },
)
def replica_health_check_dag() -> None:
    """
    ### Replica freshness check

    Fails when the GTID read replica is down, broken, or has not caught up with the primary
    beyond the end of the data interval, so nothing downstream analyses stale data. The same
    check is the first task of `02_fraud_analysis_etl` and `03_compliance_reports`; this DAG runs
    it hourly on its own as an early warning.

    **Rule** (`ledgerguard.cluster.health.check_replica_fresh`): the replica must have applied the
    primary's GTID position read *after* `data_interval_end` (waiting up to
    `freshness_timeout_seconds`). Checked with the application accounts only (API account on the
    primary, `app_user` on the replica); local root is used only to explain a failure.

    **Params**: `freshness_timeout_seconds` (bounded wait), `allow_open_interval` (accept an
    interval that has not ended yet; manual runs of "today" only).
    """

    replica_health_check = replica_health_check_task()
    replica_health_check()


replica_health_check_dag()
