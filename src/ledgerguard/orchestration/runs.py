"""Run a DAG for one UTC day through the REST API: what `ledgerguard airflow trigger` does.

A day D is the run with logical date D 00:00 UTC and data interval [D, D + 1 day), exactly what
the daily schedule (`CronDataIntervalTimetable`) gives the scheduled run of D, so a manual run and
a scheduled or backfilled one of the same day are the same run.

Airflow allows one run per logical date, so triggering a day twice does not fail: a run still in
progress is waited for, a finished one is cleared and runs again (the DAGs are idempotent; a
cleared run keeps its original conf). A DAG that is paused (every new DAG is) is unpaused, or its
run would stay queued forever.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ledgerguard.orchestration.client import AirflowApiError, AirflowClient

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    """Default progress sink."""


@dataclass
class DayRun:
    """The outcome of `run_day`; `state` is the run's final state when waited for."""

    dag_id: str
    day: date
    run_id: str
    state: str
    rerun: bool
    tasks: dict[str, str] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.state == "success"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"day": self.day.isoformat()}


def day_interval(day: date) -> tuple[datetime, datetime]:
    """[D 00:00, D+1 00:00) UTC."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def run_day(
    client: AirflowClient,
    dag_id: str,
    *,
    day: date,
    conf: dict[str, Any] | None = None,
    wait: bool = True,
    timeout: float = 600.0,
    parse_timeout: float = 120.0,
    progress: Progress = _quiet,
) -> DayRun:
    """Trigger (or rerun) `dag_id` for `day`, unpause it, and optionally wait for the result.

    A day that has not ended yet (today) runs with `allow_open_interval=true` unless `conf`
    says otherwise: the freshness check would refuse it, and the demo wants today's data.
    """
    dag = client.wait_for_dag(dag_id, timeout=parse_timeout)
    start, end = day_interval(day)
    conf = dict(conf or {})
    if end > datetime.now(UTC) and "allow_open_interval" not in conf:
        conf["allow_open_interval"] = True
        progress(f"{day.isoformat()} has not ended: the run covers what the replica has so far")
    rerun = False
    try:
        run = client.trigger(dag_id, logical_date=start, data_interval=(start, end), conf=conf)
        progress(f"triggered {dag_id} for {day.isoformat()} (run {run['dag_run_id']})")
    except AirflowApiError as exc:
        existing = client.find_run(dag_id, logical_date=start) if exc.status_code == 409 else None
        if existing is None:
            raise
        run = existing
        if run.get("state") in ("success", "failed"):
            client.clear_run(dag_id, run["dag_run_id"])
            rerun = True
            progress(
                f"{dag_id} already ran for {day.isoformat()} ({run.get('state')}): cleared run "
                f"{run['dag_run_id']} to run it again"
            )
        else:
            progress(f"{dag_id} is already {run.get('state')} for {day.isoformat()}: waiting")
    if dag.get("is_paused"):
        client.set_paused(dag_id, paused=False)
        progress(f"unpaused {dag_id} (it now also runs on its schedule)")
    run_id = str(run["dag_run_id"])
    if not wait:
        return DayRun(dag_id, day, run_id, state="queued", rerun=rerun)
    final = client.wait_for_run(dag_id, run_id, timeout=timeout)
    state = str(final.get("state"))
    tasks = client.task_states(dag_id, run_id)
    return DayRun(dag_id, day, run_id, state=state, rerun=rerun, tasks=tasks)
