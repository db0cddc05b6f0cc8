"""`ledgerguard api ...`: the HTTP server (start, stop, serve in the foreground)."""

from __future__ import annotations

import typer

from ledgerguard.cli.common import abort, say, settings_of
from ledgerguard.errors import LedgerGuardError

app = typer.Typer(
    help="The transaction API (FastAPI under Gunicorn/Uvicorn).", no_args_is_help=True
)


@app.command()
def serve(ctx: typer.Context) -> None:
    """Run the API in the foreground (port LEDGERGUARD_API_PORT, workers LEDGERGUARD_API_WORKERS)."""
    from ledgerguard.api.server import serve_foreground

    serve_foreground(settings_of(ctx))


@app.command()
def start(ctx: typer.Context) -> None:
    """Start the API in the background and wait until /health answers."""
    from ledgerguard.api.server import start_background

    settings = settings_of(ctx)
    try:
        started = start_background(settings)
    except LedgerGuardError as exc:
        abort(str(exc))
    where = f"http://{settings.api_host}:{settings.api_port}"
    say(f"API {'started' if started else 'already running'} at {where} (docs: {where}/docs)")


@app.command()
def stop(ctx: typer.Context) -> None:
    """Stop the background API."""
    from ledgerguard.api.server import stop_background

    if not stop_background(settings_of(ctx)):
        say("API was not running")
