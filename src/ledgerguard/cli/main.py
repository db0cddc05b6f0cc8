"""The `ledgerguard` command: one sub-command group per module in this package."""

from __future__ import annotations

import typer

from ledgerguard.cli import (
    airflow,
    api,
    apikey,
    backup,
    bench,
    cluster,
    db,
    fraud,
    generate,
    imports,
    load,
    monitoring,
    platform,
    scorer,
    status,
    users,
)
from ledgerguard.cli.common import LedgerGuardTyper
from ledgerguard.cli.demo import demo

app = LedgerGuardTyper(
    help="LedgerGuard: payment transactions on a primary + GTID replica, fraud analysis, "
    "observability.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(cluster.app, name="cluster")
app.add_typer(db.app, name="db")
app.add_typer(api.app, name="api")
app.add_typer(apikey.app, name="apikey")
app.add_typer(users.app, name="user")
app.add_typer(monitoring.app, name="monitoring")
app.add_typer(fraud.app, name="fraud")
app.add_typer(airflow.app, name="airflow")
app.add_typer(bench.app, name="bench")
app.add_typer(backup.app, name="backup")
app.command()(backup.restore)
app.command("load")(load.load)
app.add_typer(imports.app, name="import")
app.command()(generate.generate)
app.command(name="status")(status.stack_status)
app.command()(demo)
app.command(name="up")(platform.up)
app.command(name="down")(platform.down)
app.command(name="scorer")(scorer.scorer)
app.add_typer(scorer.alerts_app, name="alerts")


@app.callback()
def main(ctx: typer.Context) -> None:
    """Settings are read from the environment and `.env` (see `.env.example`)."""
    ctx.obj = None
