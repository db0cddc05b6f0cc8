"""02_fraud_analysis_etl: the nightly fraud analysis of one day, bucketed by user."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from ledgerguard.orchestration.dag_tasks import replica_health_check_task


@dag(
    dag_id="02_fraud_analysis_etl",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2020, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["ledgerguard", "fraud"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    params={
        "buckets": Param(4, type="integer", minimum=1, maximum=64),
        "freshness_timeout_seconds": Param(900, type="number", minimum=1, maximum=3600),
        "allow_open_interval": Param(False, type="boolean"),
    },
)
def fraud_analysis_etl() -> None:
    """
    ### Nightly fraud analysis

    Analyses the transactions of the data interval `[data_interval_start, data_interval_end)`
    (one UTC day; the run's logical date is the analysed day) and writes
    `reports/fraud_report_<day>.csv` (`Transaction ID,User ID,Amount,Currency,Status`) and
    `fraud_report_<day>_details.csv`.

    1. `replica_health_check`: the replica must cover the whole interval (GTID rule, see
       `01_replica_health_check`); otherwise the run fails before reading anything.
    2. `plan_buckets` -> `analyse_bucket` (mapped, one task per bucket, users split by
       `user_id % buckets`): reads the replica as `app_user`, upserts `fraud_scores` on the
       primary.
    3. `merge_report`: writes both report files from `fraud_scores`.

    Idempotent: a rerun, a cleared task or a backfill of the same day leaves `fraud_scores` and
    the report bytes as they were (upserts, atomic file replace). Backfill with
    `airflow backfill create --dag-id 02_fraud_analysis_etl --from-date ... --to-date ...`.
    XCom holds only counts and paths.
    """

    @task
    def plan_buckets(params: dict[str, Any] | None = None) -> list[int]:
        """One mapped task per bucket of users."""
        from ledgerguard.orchestration.tasks import bucket_ids

        assert params is not None
        return bucket_ids(int(params["buckets"]))

    @task(max_active_tis_per_dagrun=4)
    def analyse_bucket(
        bucket: int,
        data_interval_start: datetime | None = None,
        data_interval_end: datetime | None = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Score the bucket's users over the interval; verdicts go to `fraud_scores`."""
        from ledgerguard.orchestration.tasks import analyse_bucket as analyse

        assert data_interval_start is not None and data_interval_end is not None
        assert params is not None
        return analyse(
            start=data_interval_start,
            end=data_interval_end,
            bucket=bucket,
            buckets=int(params["buckets"]),
        )

    @task
    def merge_report(
        bucket_results: list[dict[str, Any]],
        data_interval_start: datetime | None = None,
        data_interval_end: datetime | None = None,
    ) -> dict[str, Any]:
        """Write the day's report files from all buckets' verdicts."""
        from ledgerguard.orchestration.tasks import merge_report as merge

        assert data_interval_start is not None and data_interval_end is not None
        return merge(
            start=data_interval_start, end=data_interval_end, bucket_results=bucket_results
        )

    buckets = plan_buckets()
    replica_health_check = replica_health_check_task()
    replica_health_check() >> buckets
    merge_report(analyse_bucket.expand(bucket=buckets))


fraud_analysis_etl()
