"""The bodies of the DAG tasks, as plain functions the thin files in `dags/` call.

Each function is the edge of one Airflow task: it builds `Settings()` from the environment (the
local Airflow passes `Settings.to_env()` to every task), converts Airflow's pendulum datetimes to
plain UTC `datetime`s, calls the library, and returns a small JSON-able dict for XCom (counts and
paths, never data). Nothing here imports Airflow, so these run the same under the scheduler,
under `dag.test()` and from a Python shell.

Every function works on exactly the interval it is given and is idempotent (the library upserts
and rewrites report files atomically), so clearing or backfilling a run is safe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from ledgerguard.settings import Settings
from ledgerguard.utc import as_utc


def business_day(start: datetime) -> date:
    """The UTC calendar day an interval starting at `start` reports on."""
    utc = as_utc(start)
    return date(utc.year, utc.month, utc.day)


def replica_health(
    *, until: datetime, timeout: float, allow_open_interval: bool = False
) -> dict[str, Any]:
    """Fail the task unless the replica covers everything before `until` (see cluster.health)."""
    from ledgerguard.cluster.health import check_replica_fresh

    freshness = check_replica_fresh(
        Settings(),
        until=as_utc(until),
        timeout=timeout,
        allow_open_interval=allow_open_interval,
    )
    return freshness.to_dict()


def bucket_ids(buckets: int) -> list[int]:
    """The mapped tasks' bucket numbers: users are split by `user_id % buckets`."""
    if buckets < 1:
        raise ValueError(f"buckets must be at least 1 (got {buckets})")
    return list(range(buckets))


def analyse_bucket(*, start: datetime, end: datetime, bucket: int, buckets: int) -> dict[str, Any]:
    """Score one bucket of users over [start, end); writes verdicts, not reports."""
    from ledgerguard.fraud.pipeline import analyze_interval

    result = analyze_interval(
        Settings(), start=as_utc(start), end=as_utc(end), bucket=bucket, buckets=buckets
    )
    return result.to_dict()


def merge_report(
    *, start: datetime, end: datetime, bucket_results: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Write the day's reports from every bucket's verdicts; returns paths and totals."""
    from ledgerguard.fraud.pipeline import merge_reports

    # a slice is one request for Airflow's lazy XCom sequence; iterating asks item by item
    # until the server answers "not found", which Airflow logs as an error
    results = list(bucket_results[:])
    paths = merge_reports(Settings(), start=as_utc(start), end=as_utc(end))
    return {
        "report_path": str(paths.report_path),
        "details_path": str(paths.details_path),
        "flagged": paths.flagged,
        "analysed": sum(int(r["analysed"]) for r in results),
        "buckets": len(results),
    }


def compliance(*, start: datetime) -> dict[str, Any]:
    """Write the CTR and structuring files of the business day starting at `start`."""
    from ledgerguard.fraud.reports.compliance import compliance_report

    report = compliance_report(Settings(), day=business_day(start))
    return {
        "ctr_path": str(report.ctr_path),
        "structuring_path": str(report.structuring_path),
        "ctr_users": report.ctr_users,
        "structuring_users": report.structuring_users,
    }


def nightly_backup(*, interval_end: datetime) -> dict[str, Any]:
    """Back up the replica once per run: a backup started at or after `interval_end` (this
    night's, made by an earlier try or a cleared run) is reused instead of taking another."""
    from ledgerguard.backup.catalog import list_backups
    from ledgerguard.backup.create import create_backup

    settings = Settings()
    for backup in list_backups(settings):
        if backup.manifest.started_at >= as_utc(interval_end):
            return {"backup": backup.id, "gtid": backup.manifest.gtid, "reused": True}
    manifest = create_backup(settings)
    return {"backup": manifest.id, "gtid": manifest.gtid, "reused": False}


def verify_nightly_backup(*, backup_id: str) -> dict[str, Any]:
    """Restore `backup_id` into a scratch server and compare it with the replica (fails if not
    identical); returns the counts, not the per-chunk details."""
    from ledgerguard.backup.verify import verify_backup

    result = verify_backup(Settings(), backup_id=backup_id)
    return {key: result[key] for key in ("backup", "gtid", "compared_at_gtid", "rows", "ok")}


def prune_backups() -> dict[str, Any]:
    """Apply the retention settings to backups and archived binlogs."""
    from ledgerguard.backup.retention import prune

    plan = prune(Settings())
    return {
        "kept": len(plan.keep),
        "deleted": plan.delete,
        "deleted_binlogs": len(plan.delete_binlogs),
    }


def train_model(*, until: datetime, days: int | None = None) -> dict[str, Any]:
    """Train a model version on the replica's labelled data before `until`; gate and promote."""
    from ledgerguard.fraud.training import train_from_replica

    report = train_from_replica(Settings(), until=as_utc(until), days=days)
    summary = report.to_dict()
    summary.pop("features")
    return summary
