"""`ledgerguard apikey ...`: the API's keys (create, list, revoke), through the DDL account."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
import typer
from rich.table import Table

from ledgerguard.apikeys import DEFAULT_SCOPES, ApiKeyError, parse_scopes
from ledgerguard.cli.common import JsonFlag, abort, err_console, print_json, say, settings_of
from ledgerguard.db.engines import migration_engine

app = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)


def _admin_engine(ctx: typer.Context) -> sa.Engine:
    return migration_engine(settings_of(ctx))


@app.command("create")
def create_key(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A unique name, e.g. the client's.")],
    scope: Annotated[
        list[str] | None,
        typer.Option(
            "--scope", "-s", help="Repeatable: transactions:write, transactions:read, admin."
        ),
    ] = None,
    merchant: Annotated[
        int | None,
        typer.Option(
            "--merchant",
            min=1,
            max=2**53 - 1,
            help="Limit the key to this merchant_id: it may only write and read that "
            "merchant's transactions, labels and alerts (403 otherwise).",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a key and print it ONCE (only its hash is stored)."""
    from ledgerguard.db.api_keys import create_api_key

    try:
        scopes = parse_scopes(scope or list(DEFAULT_SCOPES))
        engine = _admin_engine(ctx)
        with engine.begin() as conn:
            record, plain = create_api_key(conn, name=name, scopes=scopes, merchant_id=merchant)
        engine.dispose()
    except (ApiKeyError, sa.exc.SQLAlchemyError) as exc:
        abort(str(exc).splitlines()[0])
    if as_json:
        print_json(
            {
                "name": record.name,
                "prefix": record.prefix,
                "scopes": record.scopes,
                "merchant_id": record.merchant_id,
                "key": plain,
            }
        )
        return
    limited = "" if merchant is None else f", limited to merchant {merchant}"
    say(f"created API key [bold]{record.name}[/] with scopes {', '.join(record.scopes)}{limited}")
    say("store it now, it is not shown again:")
    typer.echo(plain)


@app.command("list")
def list_keys(
    ctx: typer.Context,
    as_json: JsonFlag = False,
) -> None:
    """List keys (name, prefix, scopes, created, revoked); never the keys themselves."""
    from ledgerguard.db.api_keys import list_api_keys

    engine = _admin_engine(ctx)
    try:
        with engine.connect() as conn:
            records = list_api_keys(conn)
    except sa.exc.SQLAlchemyError as exc:
        abort(str(exc).splitlines()[0])
    finally:
        engine.dispose()
    if as_json:
        print_json(
            [
                {
                    "name": r.name,
                    "prefix": r.prefix,
                    "scopes": r.scopes,
                    "merchant_id": r.merchant_id,
                    "created_at": r.created_at,
                    "revoked_at": r.revoked_at,
                }
                for r in records
            ]
        )
        return
    table = Table("name", "prefix", "scopes", "merchant", "created", "revoked")
    for r in records:
        table.add_row(
            r.name,
            r.prefix,
            " ".join(r.scopes),
            "any" if r.merchant_id is None else str(r.merchant_id),
            str(r.created_at),
            str(r.revoked_at or "-"),
        )
    err_console.print(table)


@app.command("revoke")
def revoke_key(
    ctx: typer.Context, name_or_prefix: Annotated[str, typer.Argument(help="Name or prefix.")]
) -> None:
    """Revoke a key (refused within 5 s by every worker; the row is kept for audit)."""
    from ledgerguard.db.api_keys import revoke_api_key

    engine = _admin_engine(ctx)
    try:
        with engine.begin() as conn:
            record = revoke_api_key(conn, name_or_prefix=name_or_prefix)
    except (ApiKeyError, sa.exc.SQLAlchemyError) as exc:
        abort(str(exc).splitlines()[0])
    finally:
        engine.dispose()
    say(f"revoked {record.name} ({record.prefix})")
