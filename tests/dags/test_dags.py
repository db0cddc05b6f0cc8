"""The DAGs of `dags/`: they import cleanly, and each one runs (`dag.test()`) against the real
session cluster, tasks in this process with the test settings in the environment."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from ledgerguard.cluster.admin import admin_connection, run
from ledgerguard.cluster.local import LocalCluster
from ledgerguard.db.dialect import Statement
from ledgerguard.fraud import model_store
from ledgerguard.fraud.imports.importer import import_labels, import_transactions
from ledgerguard.fraud.synthetic import SyntheticConfig, generate
from ledgerguard.fraud.synthetic_files import write_dataset
from ledgerguard.orchestration.config import REPO_DAGS_FOLDER
from ledgerguard.settings import Settings
from tests.dags.support import insert_transaction, report_line, requires_airflow, unique_user_id

pytestmark = requires_airflow

DAG_IDS = {
    "00_nightly_backup",
    "01_replica_health_check",
    "02_fraud_analysis_etl",
    "03_compliance_reports",
    "04_model_training",
}

#: The day the ETL tests analyse; `dag.test(logical_date=X)` is a manual run, whose data interval
#: Airflow infers as the last complete day before X, so a day D is run with X = D + 1 day.
ETL_DAY = datetime(2024, 2, 29, tzinfo=UTC)


def _run(dag: Any, *, logical_date: datetime, conf: dict[str, Any] | None = None) -> Any:
    began = time.monotonic()
    dag_run = dag.test(logical_date=logical_date, run_conf=conf)
    print(f"{dag.dag_id} dag.test: {time.monotonic() - began:.1f} s -> {dag_run.state}")
    return dag_run


def _task_states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def test_every_dag_file_imports_without_errors(dag_bag: Any):
    assert dag_bag.import_errors == {}
    files = {Path(dag.fileloc).name for dag in dag_bag.dags.values()}
    assert files == {path.name for path in REPO_DAGS_FOLDER.glob("*.py")}
    assert set(dag_bag.dag_ids) == DAG_IDS
    for dag in dag_bag.dags.values():
        assert dag.doc_md and "###" in dag.doc_md, f"{dag.dag_id} has no documentation"
        assert "ledgerguard" in dag.tags


def test_fraud_etl_flags_a_large_payment_and_reruns_identically(
    healthy_cluster: LocalCluster, settings: Settings, task_env: dict[str, str], dag_bag: Any
):
    user_id = unique_user_id()
    tx_id = insert_transaction(
        settings,
        user_id=user_id,
        amount="15000.00",
        currency="USD",
        occurred_at=ETL_DAY + timedelta(hours=13, minutes=5),
    )
    healthy_cluster.wait_for_replica(timeout=30)
    dag = dag_bag.get_dag("02_fraud_analysis_etl")

    first = _run(dag, logical_date=ETL_DAY + timedelta(days=1), conf={"buckets": 3})
    assert first.state == "success", _task_states(first)
    assert first.data_interval_start == ETL_DAY
    report = settings.reports_dir / "fraud_report_2024-02-29.csv"
    content = report.read_bytes()
    assert content.startswith(b"Transaction ID,User ID,Amount,Currency,Status\n")
    assert report_line(report, tx_id) == f"{tx_id},{user_id},15000.00,USD,FLAGGED_FRAUD"

    again = _run(dag, logical_date=ETL_DAY + timedelta(days=1), conf={"buckets": 3})
    assert again.state == "success", _task_states(again)
    assert report.read_bytes() == content


def test_compliance_dag_writes_the_ctr_and_structuring_files(
    healthy_cluster: LocalCluster, settings: Settings, task_env: dict[str, str], dag_bag: Any
):
    day = datetime(2024, 3, 1, tzinfo=UTC)
    user_id = unique_user_id()
    for hour in (9, 15):
        insert_transaction(
            settings,
            user_id=user_id,
            amount="6000.00",
            currency="USD",
            occurred_at=day + timedelta(hours=hour),
        )
    # two near-line payments (in [8,000, 10,000] USD) that together pass 10,000: structuring
    structurer = user_id + 1
    for hour in (3, 20):
        insert_transaction(
            settings,
            user_id=structurer,
            amount="9000.00",
            currency="USD",
            occurred_at=day + timedelta(hours=hour),
        )
    healthy_cluster.wait_for_replica(timeout=30)

    dag_run = _run(dag_bag.get_dag("03_compliance_reports"), logical_date=day + timedelta(days=1))
    assert dag_run.state == "success", _task_states(dag_run)
    ctr = (settings.reports_dir / "ctr_report_2024-03-01.csv").read_text().splitlines()
    (line,) = [row for row in ctr if row.startswith(f"{user_id},")]
    assert line.startswith(f"{user_id},2,12000.00") and line.endswith(",CTR_REQUIRED")
    structuring = (settings.reports_dir / "structuring_candidates_2024-03-01.csv").read_text()
    lines = structuring.splitlines()
    assert lines[0] == "User ID,Transactions,Total USD,First At,Last At"
    (line,) = [row for row in lines if row.startswith(f"{structurer},")]
    assert line.startswith(f"{structurer},2,18000.00")
    assert line.endswith(",2024-03-01T03:00:00.000000Z,2024-03-01T20:00:00.000000Z")
    assert not [row for row in lines if row.startswith(f"{user_id},")]  # 6,000 is not near-line


def test_nightly_backup_dag_backs_up_verifies_and_prunes_once_per_night(
    healthy_cluster: LocalCluster, settings: Settings, task_env: dict[str, str], dag_bag: Any
):
    from ledgerguard.backup.catalog import list_backups

    # the tasks run with the backup account's secret, never root's or the replication account's
    for secret in (settings.mysql_root_password, settings.repl_password):
        assert secret.get_secret_value() not in task_env.values()
    assert task_env["LEDGERGUARD_BACKUP_PASSWORD"] == settings.backup_password.get_secret_value()
    dag = dag_bag.get_dag("00_nightly_backup")
    # a manual run covers the last complete day before its logical date: tonight's interval
    # ends at today's midnight, before any backup this session takes
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    before = len(list_backups(settings))
    first = _run(dag, logical_date=today + timedelta(hours=1))
    assert first.state == "success", _task_states(first)
    backups = list_backups(settings)
    assert len(backups) == before + 1
    assert backups[0].verified and backups[0].verified["ok"]
    again = _run(dag, logical_date=today + timedelta(hours=1))
    assert again.state == "success", _task_states(again)
    assert len(list_backups(settings)) == before + 1  # tonight's backup is reused


def test_health_check_dag_succeeds_on_a_healthy_replica(
    healthy_cluster: LocalCluster, task_env: dict[str, str], dag_bag: Any
):
    hour = datetime(2024, 3, 2, 10, tzinfo=UTC)
    dag_run = _run(dag_bag.get_dag("01_replica_health_check"), logical_date=hour)
    assert dag_run.state == "success", _task_states(dag_run)


def test_health_check_dag_fails_while_the_replica_sql_thread_is_stopped(
    healthy_cluster: LocalCluster, settings: Settings, task_env: dict[str, str], dag_bag: Any
):
    replica = healthy_cluster.specs["replica"]
    password = settings.mysql_root_password.get_secret_value()
    with admin_connection(replica, password=password) as conn:
        run(conn, Statement("STOP SLAVE SQL_THREAD"))
    try:
        insert_transaction(
            settings,
            user_id=unique_user_id(),
            amount="1.00",
            currency="USD",
            occurred_at=datetime(2024, 3, 2, 9, 30, tzinfo=UTC),
        )
        dag_run = _run(
            dag_bag.get_dag("01_replica_health_check"),
            logical_date=datetime(2024, 3, 2, 11, tzinfo=UTC),
            conf={"freshness_timeout_seconds": 2},
        )
        assert dag_run.state == "failed"
        assert _task_states(dag_run) == {"replica_health_check": "failed"}
    finally:
        with admin_connection(replica, password=password) as conn:
            run(conn, Statement("START SLAVE SQL_THREAD"))
        healthy_cluster.wait_for_replica(timeout=30)


def test_model_training_dag_trains_a_version_from_the_replica(
    healthy_cluster: LocalCluster,
    settings: Settings,
    task_env: dict[str, str],
    dag_bag: Any,
    tmp_path: Path,
):
    config = SyntheticConfig(
        customers=300,
        terminals=150,
        days=30,
        start=date(2021, 1, 1),  # the 30 days the run below trains on, after start_date
        seed=21,
        user_id_offset=88_000_000,
        terminal_id_offset=88_000_000,
        external_prefix="dagtrain-",
    )
    tx_path, labels_path = write_dataset(generate(config), tmp_path, name="dagtrain")
    import_transactions(settings, tx_path)
    import_labels(settings, labels_path)
    healthy_cluster.wait_for_replica(timeout=60)
    store = settings.fraud.model_store_dir
    try:
        # a manual run on Tuesday 2021-02-16 covers the week ending Sunday 2021-02-14
        dag_run = _run(
            dag_bag.get_dag("04_model_training"),
            logical_date=datetime(2021, 2, 16, tzinfo=UTC),
            conf={"training_days": 37},
        )
        assert dag_run.state == "success", _task_states(dag_run)
        assert _task_states(dag_run)["train_model"] == "success"
        assert dag_run.data_interval_end == datetime(2021, 2, 14, tzinfo=UTC)
        (version,) = model_store.versions(store)
        card = model_store.card(store, version)
        # labels of the 7 days before the interval's end are not known yet: left out
        assert card["validation_interval"][1] == "2021-01-31T00:00:00+00:00"
        assert card["training_interval"][0] == "2021-01-01T00:00:00+00:00"
        assert (model_store.promoted(store) == version) == card["promotion"].startswith("promoted")
    finally:  # the nightly analyses of the other tests run the rules alone
        (store / model_store.PROMOTED_FILE).unlink(missing_ok=True)
