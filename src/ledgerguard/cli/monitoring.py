"""`ledgerguard monitoring ...`: Prometheus and the mysqld-exporters (up, down, status)."""

from __future__ import annotations

import typer
from rich.table import Table

from ledgerguard.cli.common import (
    JsonFlag,
    abort,
    err_console,
    say,
    settings_of,
    show_status,
    up_down,
)
from ledgerguard.errors import LedgerGuardError
from ledgerguard.monitoring.local import LocalMonitoring, MonitoringStatus

app = typer.Typer(
    help="Run local monitoring: Prometheus and one mysqld-exporter per server.",
    no_args_is_help=True,
)


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
    show_status(
        current.to_dict(),
        healthy=current.healthy,
        as_json=as_json,
        render=lambda: render_monitoring_status(current),
    )


def render_monitoring_status(current: MonitoringStatus) -> None:
    """A Rich table of the monitoring processes on stderr."""
    table = Table(title="LedgerGuard monitoring", title_justify="left")
    for column in ("process", "state", "address", "pid", "log"):
        table.add_column(column)
    for process in current.processes:
        table.add_row(
            process.name,
            up_down(process.up),
            process.url,
            str(process.pid or "-"),
            process.log_file,
        )
    err_console.print(table)
