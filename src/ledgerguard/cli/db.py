"""`ledgerguard db ...`: schema migrations on the primary."""

from __future__ import annotations

import typer
from alembic.util import CommandError
from sqlalchemy.exc import SQLAlchemyError

from ledgerguard.cli.common import abort, say, settings_of
from ledgerguard.db import migrate

app = typer.Typer(help="Schema migrations (Alembic), run on the primary.", no_args_is_help=True)


@app.command()
def upgrade(ctx: typer.Context, revision: str = "head") -> None:
    """Migrate the primary's schema to `revision` (it replicates to the replica)."""
    settings = settings_of(ctx)
    try:
        migrate.upgrade(settings, revision)
    except (CommandError, SQLAlchemyError) as exc:
        abort(f"migration failed: {exc}")
    say(f"schema at {migrate.current(settings)}")


@app.command()
def current(ctx: typer.Context) -> None:
    """Print the primary's schema revision."""
    typer.echo(migrate.current(settings_of(ctx)) or "(none)")
