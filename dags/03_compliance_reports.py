"""03_compliance_reports: the daily CTR and structuring-candidate files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from ledgerguard.orchestration.dag_tasks import replica_health_check_task


@dag(
    dag_id="03_compliance_reports",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2020, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["ledgerguard", "compliance"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    params={
        "freshness_timeout_seconds": Param(900, type="number", minimum=1, maximum=3600),
        "allow_open_interval": Param(False, type="boolean"),
    },
)
def compliance_reports() -> None:
    """
    ### Daily compliance reports

    For the business day of the data interval (UTC; the logical date is that day), reads the
    replica as `app_user` and writes:

    * `reports/ctr_report_<day>.csv`: Currency Transaction Report candidates, users whose
      aggregated USD volume on the day is above 10,000 (`LEDGERGUARD_FRAUD__LARGE_AMOUNT_USD`),
      plus users paying in a currency without a USD rate (to review);
    * `reports/structuring_candidates_<day>.csv`: users splitting payments just under the line
      within `structuring_window_hours`.

    Runs only after `replica_health_check` (GTID freshness rule, see `01_replica_health_check`).
    Idempotent: the files are rewritten atomically from the same data.
    """

    @task
    def compliance_report(data_interval_start: datetime | None = None) -> dict[str, Any]:
        """Write the day's CTR and structuring files; returns their paths and user counts."""
        from ledgerguard.orchestration.tasks import compliance

        assert data_interval_start is not None
        return compliance(start=data_interval_start)

    replica_health_check = replica_health_check_task()
    replica_health_check() >> compliance_report()


compliance_reports()
