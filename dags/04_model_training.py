"""04_model_training: the platform retrains, judges and promotes its own fraud model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from ledgerguard.orchestration.dag_tasks import replica_health_check_task


@dag(
    dag_id="04_model_training",
    schedule=CronDataIntervalTimetable("@weekly", timezone="UTC"),
    start_date=datetime(2020, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["ledgerguard", "fraud", "model"],
    default_args={"retries": 1, "retry_delay": timedelta(minutes=15)},
    params={
        "freshness_timeout_seconds": Param(900, type="number", minimum=1, maximum=3600),
        "allow_open_interval": Param(False, type="boolean"),
        "training_days": Param(
            None, type=["null", "integer"], minimum=2, description="default: model_training_days"
        ),
    },
)
def model_training() -> None:
    """
    ### Weekly model training

    Reads the `LEDGERGUARD_FRAUD__MODEL_TRAINING_DAYS` (60) before the data interval's end from
    the replica, leaving out the last `label_delay_days` whose labels are not known yet, and
    trains a new model version on the engine's window features: time-split validation on the
    latest labelled days, flag threshold for `LEDGERGUARD_FRAUD__TARGET_PRECISION`.

    The new version goes to the model store (`LEDGERGUARD_FRAUD__MODEL_STORE_DIR`: model file
    + JSON card) and is **promoted** only if it beats both the rules alone and the promoted
    version on those days; the nightly `02_fraud_analysis_etl` then uses it. The task's XCom
    holds the card's figures and the gate's decision. Rerunning a week adds another version
    (never overwrites one) and promotes it only through the same gate.
    """

    @task
    def train_model(
        data_interval_end: datetime | None = None, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Train, validate, store, and promote through the gate; returns the card's figures."""
        from ledgerguard.orchestration.tasks import train_model as train

        assert data_interval_end is not None and params is not None
        return train(until=data_interval_end, days=params.get("training_days"))

    replica_health_check = replica_health_check_task()
    replica_health_check() >> train_model()


model_training()
