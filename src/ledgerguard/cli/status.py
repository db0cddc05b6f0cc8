"""`ledgerguard status`: the whole stack at a glance (cluster, replication, API, Airflow, scorer,
binlog archive, monitoring)."""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from ledgerguard.cli.common import (
    JsonFlag,
    err_console,
    settings_of,
    show_status,
    up_down,
)
from ledgerguard.monitoring.stack import stack_status as gather_stack_status


def stack_status(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """The whole stack at a glance: cluster, replication lag, API, Airflow, scorer, binlog
    archive, monitoring.

    Exit code 0 when every component is up, 3 otherwise.
    """
    current = gather_stack_status(settings_of(ctx))
    show_status(
        current,
        healthy=current["healthy"],
        as_json=as_json,
        render=lambda: render_stack_status(current),
    )


def render_stack_status(current: dict[str, Any]) -> None:
    """A Rich table of `stack_status` on stderr."""
    table = Table(title="LedgerGuard stack", title_justify="left")
    for column in ("component", "state", "address", "detail"):
        table.add_column(column)
    for name, component in current["components"].items():
        table.add_row(
            name,
            up_down(component["up"]),
            escape(component["address"]),
            escape(component["detail"] or "-"),
        )
    err_console.print(table)
    err_console.print("[green]all up[/]" if current["healthy"] else "[red]not all up[/]")
