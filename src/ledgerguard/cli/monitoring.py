"""`ledgerguard monitoring ...` (Prometheus + mysqld-exporters) and `ledgerguard status`."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ledgerguard.cli.common import abort, err_console, print_json, say, settings_of
from ledgerguard.errors import LedgerGuardError
from ledgerguard.monitoring.local import LocalMonitoring, MonitoringStatus
from ledgerguard.monitoring.stack import stack_status as gather_stack_status

app = typer.Typer(
    help="Run local monitoring: Prometheus and one mysqld-exporter per server.",
    no_args_is_help=True,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON only (for scripts).")]

#: Exit code when something is down, as `cluster status` uses it.
NOT_HEALTHY = 3


@app.command()
def up(ctx: typer.Context) -> None:
    """Render the config from deploy/prometheus/, check it with promtool, start what is down.

    Idempotent: running processes are kept; a running Prometheus reloads its configuration.
    """
    settings = settings_of(ctx)
    monitoring = LocalMonitoring(settings)
    try:
        result = monitoring.up(progress=say)
    except LedgerGuardError as exc:
        abort(str(exc))
    if not result.started:
        say("monitoring already running")
    say(
        f"[green]monitoring up[/]: Prometheus {monitoring.prometheus().url}, exporters "
        f"{monitoring.exporter('primary').url} (primary), "
        f"{monitoring.exporter('replica').url} (replica); config in {monitoring.files.root}"
    )


@app.command()
def down(ctx: typer.Context) -> None:
    """Stop Prometheus and the exporters (collected samples are kept)."""
    try:
        stopped = LocalMonitoring(settings_of(ctx)).down(progress=say)
    except LedgerGuardError as exc:
        abort(str(exc))
    if not stopped:
        say("monitoring was not running")


@app.command()
def status(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Prometheus and both exporters: pid, address, answering. Exit code 3 when one is down."""
    try:
        current = LocalMonitoring(settings_of(ctx)).status()
    except LedgerGuardError as exc:
        abort(str(exc))
    if as_json:
        print_json(current.to_dict())
    else:
        render_monitoring_status(current)
    if not current.healthy:
        raise typer.Exit(NOT_HEALTHY)


def stack_status(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """The whole stack at a glance: cluster, replication lag, API, Airflow, monitoring.

    Exit code 0 when every component is up, 3 otherwise.
    """
    current = gather_stack_status(settings_of(ctx))
    if as_json:
        print_json(current)
    else:
        render_stack_status(current)
    if not current["healthy"]:
        raise typer.Exit(NOT_HEALTHY)


def _up_down(up: bool) -> str:
    return "[green]up[/]" if up else "[red]down[/]"


def render_monitoring_status(current: MonitoringStatus) -> None:
    """A Rich table of the monitoring processes on stderr."""
    table = Table(title="LedgerGuard monitoring", title_justify="left")
    for column in ("process", "state", "address", "pid", "log"):
        table.add_column(column)
    for process in current.processes:
        table.add_row(
            process.name,
            _up_down(process.up),
            process.url,
            str(process.pid or "-"),
            process.log_file,
        )
    err_console.print(table)


def render_stack_status(current: dict[str, Any]) -> None:
    """A Rich table of `stack_status` on stderr."""
    table = Table(title="LedgerGuard stack", title_justify="left")
    for column in ("component", "state", "address", "detail"):
        table.add_column(column)
    for name, component in current["components"].items():
        table.add_row(
            name,
            _up_down(component["up"]),
            escape(component["address"]),
            escape(component["detail"] or "-"),
        )
    err_console.print(table)
    err_console.print("[green]all up[/]" if current["healthy"] else "[red]not all up[/]")
