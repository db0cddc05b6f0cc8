"""Shared CLI plumbing: settings from the context, `abort`, and stderr output."""

from __future__ import annotations

import json
from typing import Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console

from ledgerguard.settings import Settings

#: Messages and progress go to stderr, so `--json` output on stdout stays machine-readable.
err_console = Console(stderr=True)


def abort(message: str, code: int = 1) -> NoReturn:
    """Stop with a one-line message on stderr and no traceback (expected failures only)."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def load_settings() -> Settings:
    """Settings from the environment and `.env`, or a clear message naming what is missing."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]) or "settings"
            if error["type"] == "missing":
                problems.append(f"{name.upper()} is not set")
            else:
                problems.append(f"{name}: {error['msg']}")
        abort(
            "invalid configuration: "
            + "; ".join(problems)
            + " (copy .env.example to .env, or set the variables)",
            code=2,
        )


def settings_of(ctx: typer.Context) -> Settings:
    """The `Settings` built once by the root callback."""
    if ctx.obj is None:
        ctx.obj = load_settings()
    return ctx.obj


def print_json(data: Any) -> None:
    """JSON, and only JSON, on stdout."""
    typer.echo(json.dumps(data, indent=2, default=str))


def say(message: str) -> None:
    err_console.print(message, highlight=False, soft_wrap=True)
