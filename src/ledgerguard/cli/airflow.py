"""`ledgerguard airflow ...`: a local Airflow 3 (`airflow standalone`) running the DAGs of `dags/`."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.table import Table

from ledgerguard.cli.common import (
    NOT_HEALTHY,
    JsonFlag,
    abort,
    err_console,
    print_json,
    say,
    settings_of,
)
from ledgerguard.errors import LedgerGuardError

app = typer.Typer(
    help="Local Airflow 3 for the DAGs in dags/ (UI and REST API on LEDGERGUARD_AIRFLOW_PORT).",
    no_args_is_help=True,
)


@app.command()
def up(
    ctx: typer.Context,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait until every component is healthy.")
    ] = 180.0,
) -> None:
    """Start `airflow standalone` in the background (state in <LEDGERGUARD_HOME>/airflow).

    Login with AIRFLOW_ADMIN_USER / AIRFLOW_ADMIN_PASSWORD; idempotent.
    """
    from ledgerguard.orchestration.config import base_url
    from ledgerguard.orchestration.process import start_airflow

    settings = settings_of(ctx)
    say(f"starting Airflow (up to {timeout:.0f} s; the first start creates its database)")
    try:
        started = start_airflow(settings, timeout=timeout)
    except LedgerGuardError as exc:
        abort(str(exc))
    say(
        f"[green]Airflow {'up' if started else 'already running'}[/] at {base_url(settings)} "
        f"(login {settings.airflow_admin_user} / AIRFLOW_ADMIN_PASSWORD)"
    )


@app.command()
def down(ctx: typer.Context) -> None:
    """Stop the local Airflow and every process it started (its state is kept)."""
    from ledgerguard.orchestration.process import stop_airflow

    if not stop_airflow(settings_of(ctx)):
        say("Airflow was not running")
    else:
        say("stopped Airflow")


@app.command()
def status(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Running or not, URL, and each component's health; exit code 3 when not healthy."""
    from ledgerguard.orchestration.process import COMPONENTS, airflow_status

    current = airflow_status(settings_of(ctx))
    if as_json:
        print_json(current.to_dict())
    else:
        table = Table("component", "status", title=f"Airflow {current.url}")
        table.add_row("standalone", f"pid {current.pid}" if current.running else "down")
        for name in COMPONENTS:
            table.add_row(name, current.components.get(name, "-"))
        err_console.print(table)
        if current.error:
            say(current.error)
    if not current.healthy:
        raise typer.Exit(NOT_HEALTHY)


def _parse_day(value: str) -> date:
    today = datetime.now(UTC).date()
    if value == "today":
        return today
    if value == "yesterday":
        return today - timedelta(days=1)
    try:
        return date.fromisoformat(value)
    except ValueError:
        abort(f"--date must be YYYY-MM-DD, today or yesterday (got {value!r})", code=2)


def _parse_conf(values: list[str]) -> dict[str, Any]:
    conf: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            abort(f"--conf takes KEY=VALUE (got {item!r})", code=2)
        try:
            conf[key] = json.loads(raw)
        except ValueError:
            conf[key] = raw
    return conf


@app.command()
def trigger(
    ctx: typer.Context,
    dag_id: Annotated[str, typer.Argument(help="e.g. 02_fraud_analysis_etl")],
    day: Annotated[
        str,
        typer.Option(
            "--date",
            help="UTC day to run for (YYYY-MM-DD, today, yesterday); the run's data interval is "
            "that whole day.",
        ),
    ] = "yesterday",
    conf: Annotated[
        list[str] | None,
        typer.Option("--conf", "-c", help="Repeatable KEY=VALUE run parameter, e.g. buckets=8."),
    ] = None,
    wait: Annotated[bool, typer.Option(help="Wait until the run has finished.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the run.")] = 900.0,
    as_json: JsonFlag = False,
) -> None:
    """Run a DAG for one day (a finished run of that day is cleared and runs again).

    Unpauses the DAG. With --wait, exits 1 unless the run succeeds. A day that has not ended
    yet (today) is run with allow_open_interval=true: it covers what the replica has so far.
    """
    from ledgerguard.orchestration.client import local_client
    from ledgerguard.orchestration.runs import run_day

    settings = settings_of(ctx)
    run_for = _parse_day(day)
    try:
        with local_client(settings) as client:
            outcome = run_day(
                client,
                dag_id,
                day=run_for,
                conf=_parse_conf(conf or []),
                wait=wait,
                timeout=timeout,
                progress=say,
            )
    except LedgerGuardError as exc:
        abort(str(exc))
    if as_json:
        print_json(outcome.to_dict())
    elif wait:
        colour = "green" if outcome.succeeded else "red"
        say(f"[{colour}]{dag_id} {run_for.isoformat()}: {outcome.state}[/] ({outcome.run_id})")
        if not outcome.succeeded:
            failed = [task for task, state in outcome.tasks.items() if state != "success"]
            say(f"tasks not successful: {', '.join(failed)}; see the run's logs in the UI")
    if wait and not outcome.succeeded:
        raise typer.Exit(1)
