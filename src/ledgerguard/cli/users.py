"""`ledgerguard user ...`: accounts of the analyst web app (people; machines use API keys)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Annotated

import sqlalchemy as sa
import typer
from rich.table import Table

from ledgerguard.cli.common import abort, err_console, print_json, say, settings_of
from ledgerguard.db import audit
from ledgerguard.db.engines import migration_engine
from ledgerguard.db.web_users import ROLES, UserError, create_user, list_users

app = typer.Typer(
    help="Analyst accounts of the web app (/review): create, list.", no_args_is_help=True
)


@app.command("create")
def create(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="Login name (letters, digits, _ . @ -).")],
    role: Annotated[str, typer.Option("--role", help="analyst or admin.")] = "analyst",
    password_env: Annotated[
        str | None,
        typer.Option(
            "--password-env",
            help="Read the password from this environment variable instead of prompting.",
        ),
    ] = None,
) -> None:
    """Create an account; the password is asked twice (or read from --password-env)."""
    from ledgerguard.web.passwords import hash_password

    if role not in ROLES:
        abort(f"unknown role {role!r}; choose from {', '.join(ROLES)}")
    if password_env:
        password = os.environ.get(password_env)
        if not password:
            abort(f"environment variable {password_env} is not set")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        password_hash = hash_password(password)
    except ValueError as exc:
        abort(str(exc))
    now = datetime.now(UTC)
    engine = migration_engine(settings_of(ctx))
    try:
        with engine.begin() as conn:
            user = create_user(
                conn, username=username, password_hash=password_hash, role=role, now=now
            )
            audit.record(
                conn,
                actor="cli",
                action="user_create",
                target=f"user:{user.id}",
                at=now,
                after={"username": username, "role": role},
            )
    except (UserError, sa.exc.SQLAlchemyError) as exc:
        abort(str(exc).splitlines()[0])
    finally:
        engine.dispose()
    say(f"created {role} [bold]{username}[/]")


@app.command("list")
def list_accounts(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """List accounts (never their password hashes)."""
    engine = migration_engine(settings_of(ctx))
    try:
        with engine.connect() as conn:
            users = list_users(conn)
    except sa.exc.SQLAlchemyError as exc:
        abort(str(exc).splitlines()[0])
    finally:
        engine.dispose()
    rows = [
        {
            "id": u.id,
            "username": u.username,
            "role": u.role,
            "created_at": u.created_at,
            "disabled_at": u.disabled_at,
            "locked_until": u.locked_until,
        }
        for u in users
    ]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "username", "role", "created", "disabled", "locked until")
    for r in rows:
        table.add_row(
            *(
                str(r[k] or "-")
                for k in ("id", "username", "role", "created_at", "disabled_at", "locked_until")
            )
        )
    err_console.print(table)
