"""`ledgerguard load`: realistic POST /transactions traffic with live figures and a summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ledgerguard.cli.common import (
    abort,
    duration_option,
    err_console,
    live_option,
    print_json,
    say,
    settings_of,
    users_option,
    warmup_option,
)
from ledgerguard.errors import LedgerGuardError
from ledgerguard.load.display import LiveDisplay, render_summary
from ledgerguard.load.generator import GeneratorConfig
from ledgerguard.load.runner import LoadConfig, run_load_sync
from ledgerguard.load.target import (
    KEY_VARIABLE,
    URL_VARIABLE,
    api_url,
    demo_keys,
    keys_from_file,
    split_keys,
)

_ENV = "LEDGERGUARD_LOAD_"
Users = users_option(
    _ENV,
    maximum=10_000,
    help="Concurrent virtual users, one keep-alive connection each (closed loop); with --rate, "
    "the number of connections.",
)
Duration = duration_option(_ENV, minimum=0.5, help="Measured seconds.")
Warmup = warmup_option(_ENV, help="Seconds of load before measuring.")
Live = live_option(
    _ENV, help="Live figures on stderr (a panel on a terminal, a line every 5 s elsewhere)."
)


def load(
    ctx: typer.Context,
    users: Users = 50,
    duration: Duration = 60.0,
    rate: Annotated[
        float | None,
        typer.Option(
            min=0.1,
            envvar=f"{_ENV}RATE",
            help="Open loop: offer this many requests/s whatever the API does (latency counts "
            "from the scheduled time). Default: closed loop.",
        ),
    ] = None,
    api: Annotated[
        str | None,
        typer.Option(
            "--api",
            envvar=URL_VARIABLE,
            help="API base URL. Default: http://LEDGERGUARD_API_HOST:LEDGERGUARD_API_PORT.",
        ),
    ] = None,
    key: Annotated[
        list[str] | None,
        typer.Option(
            "--key",
            "-k",
            envvar=KEY_VARIABLE,
            help="API key with transactions:write; repeat (or separate by spaces/commas) to "
            "spread users over several keys. Prefer the variable or --key-file: a key on the "
            "command line is visible to every user (ps). Default: the demo key in "
            "<LEDGERGUARD_HOME>/demo-api-key.",
        ),
    ] = None,
    key_file: Annotated[
        Path | None,
        typer.Option(
            "--key-file",
            envvar=f"{KEY_VARIABLE}_FILE",
            help="File with the API key(s), one per line (instead of --key).",
        ),
    ] = None,
    json_out: Annotated[
        str | None,
        typer.Option(
            "--json",
            envvar=f"{_ENV}JSON",
            metavar="FILE",
            help="Write the report as JSON to FILE, or to stdout with '-' (then stdout carries "
            "only JSON).",
        ),
    ] = None,
    warmup: Warmup = 0.0,
    timeout: Annotated[
        float,
        typer.Option(min=0.1, envvar=f"{_ENV}TIMEOUT", help="Seconds before a request fails."),
    ] = 10.0,
    idempotency_share: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            envvar=f"{_ENV}IDEMPOTENCY_SHARE",
            help="Share of requests sent with a fresh Idempotency-Key (single-row write path).",
        ),
    ] = 0.0,
    large_share: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            envvar=f"{_ENV}LARGE_SHARE",
            help="Share of payments above 10,000 USD (what the fraud rules flag).",
        ),
    ] = 0.01,
    first_user_id: Annotated[
        int,
        typer.Option(min=1, envvar=f"{_ENV}FIRST_USER_ID", help="Smallest customer user_id."),
    ] = 1_000_000,
    customers: Annotated[
        int,
        typer.Option(min=1, envvar=f"{_ENV}CUSTOMERS", help="Distinct customer user_ids."),
    ] = 10_000,
    seed: Annotated[
        int | None,
        typer.Option(envvar=f"{_ENV}SEED", help="Seed for a reproducible transaction stream."),
    ] = None,
    live: Live = True,
) -> None:
    """Post realistic transactions and report TPS, latency percentiles and errors.

    Every option also reads the environment variable shown next to it. The summary goes to
    stderr; with --json the report goes to FILE or (with '-') stdout.
    """
    url = api or (api_url(settings_of(ctx)))
    try:
        keys = (
            split_keys(key)
            if key
            else keys_from_file(key_file)
            if key_file
            else demo_keys(settings_of(ctx))
        )
        config = LoadConfig(
            url=url,
            keys=keys,
            users=users,
            duration=duration,
            rate=rate,
            warmup=warmup,
            timeout=timeout,
            idempotency_share=idempotency_share,
            generator=GeneratorConfig(
                first_user_id=first_user_id,
                customers=customers,
                large_share=large_share,
                seed=seed,
            ),
        )
        with LiveDisplay(err_console, enabled=live) as display:
            report = run_load_sync(config, on_tick=display.update)
    except (LedgerGuardError, ValueError) as exc:
        abort(str(exc))
    data = report.to_dict()
    err_console.print(render_summary(data))
    write_report(data, json_out)
    if report.ok == 0:
        abort(f"no request succeeded; first errors: {data['error_samples']}", code=3)


def write_report(data: dict[str, Any], target: str | None) -> None:
    """JSON to stdout ('-') or to a file; nothing when `target` is None."""
    if target is None:
        return
    if target == "-":
        print_json(data)
        return
    Path(target).write_text(json.dumps(data, indent=2, default=str) + "\n")
    say(f"report written to {target}")
