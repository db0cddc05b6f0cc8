"""`bench ingest`, `bench unauthenticated`, `bench api-cpu`, `bench key-cache-refresh`: the API's write
path, its refusals and its CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ledgerguard.cli.bench.options import (
    ENV,
    Duration,
    Live,
    Users,
    Warmup,
    print_report,
)
from ledgerguard.cli.common import (
    abort,
    err_console,
    print_json,
    say,
    settings_of,
)
from ledgerguard.errors import LedgerGuardError
from ledgerguard.load.display import LiveDisplay


def ingest(
    ctx: typer.Context,
    duration: Duration = 30.0,
    users: Users = 50,
    api_workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            envvar=f"{ENV}API_WORKERS",
            help="Workers of the API this command starts (default LEDGERGUARD_API_WORKERS); "
            "refused if a running API has another count.",
        ),
    ] = None,
    warmup: Warmup = 2.0,
    ceiling: Annotated[
        bool,
        typer.Option(
            envvar=f"{ENV}CEILING",
            help="Measure the primary's ceiling with sysbench (--no-ceiling: the API only).",
        ),
    ] = True,
    keep_running: Annotated[
        bool,
        typer.Option(
            envvar=f"{ENV}KEEP_RUNNING",
            help="Leave the cluster/API running if this command started them.",
        ),
    ] = False,
    live: Live = True,
) -> None:
    """Ceiling of durable inserts on the primary vs. the API at N users, plus replica lag.

    Prints the report as JSON on stdout (only JSON) and a verdict table on stderr. It starts
    the cluster and the API on the configured ports when they are not running (and stops them
    afterwards). Every option also reads the environment variable shown next to it.
    """
    from ledgerguard.load.bench.ingest import IngestOptions, run_ingest

    settings = settings_of(ctx)
    options = IngestOptions(
        duration=duration,
        users=users,
        api_workers=api_workers,
        warmup=warmup,
        ceiling=ceiling,
        keep_running=keep_running,
    )
    try:
        with LiveDisplay(err_console, enabled=live) as display:
            report = run_ingest(settings, options, progress=say, on_tick=display.update)
    except LedgerGuardError as exc:
        abort(str(exc))
    err_console.print(render_verdict(report))
    print_json(report)


def render_verdict(report: dict[str, Any]) -> Table:
    """Targets against measurements, one row each."""
    table = Table(title="bench ingest — targets", title_justify="left")
    for column in ("figure", "measured", "target", "met"):
        table.add_column(column)
    units = {"tps": "TPS", "p99_ms": "ms", "ratio": "", "replica_lag_p99_s": "s"}
    for name, row in report["targets"].items():
        comparison = "≤" if name in ("p99_ms", "replica_lag_p99_s") else "≥"
        measured = "-" if row["measured"] is None else f"{row['measured']:,} {units[name]}"
        met = {True: "[green]yes[/]", False: "[red]no[/]", None: "-"}[row["met"]]
        table.add_row(name, measured, f"{comparison} {row['target']:,} {units[name]}", met)
    ceiling = report["ceiling"]
    if ceiling:
        table.caption = (
            f"ceiling: sysbench oltp_insert {ceiling['tps']:,.0f} TPS at {ceiling['threads']} "
            f"threads, p99 {ceiling['latency_ms']['p99']} ms"
        )
    return table


def unauthenticated(
    ctx: typer.Context,
    rates: Annotated[
        str,
        typer.Option(help="Flood rates to try (requests/s without a valid key), comma-separated."),
    ] = "250,500,1000,2000",
    duration: Annotated[float, typer.Option(min=2, help="Measured seconds per run.")] = 10.0,
    keyed_rate: Annotated[
        float, typer.Option(min=1, help="Keyed POSTs per second (open loop) in every run.")
    ] = 200.0,
    key_file: Annotated[
        Path | None,
        typer.Option(
            envvar="LEDGERGUARD_API_KEY_FILE",
            help="File with an API key with transactions:write (default: the demo key).",
        ),
    ] = None,
) -> None:
    """Requests without a valid key per second that leave the keyed p99 within 2x of idle.

    Needs the API running (`ledgerguard up`); prints JSON. Run it on a quiet machine.
    """
    from ledgerguard.load.bench.unauthenticated import bench_unauthenticated
    from ledgerguard.load.target import api_url, demo_keys, keys_from_file

    settings = settings_of(ctx)
    url = api_url(settings)
    try:
        keys = keys_from_file(key_file) if key_file else demo_keys(settings)
        flood_rates = tuple(float(r) for r in rates.split(",") if r.strip())
    except (LedgerGuardError, ValueError) as exc:
        abort(str(exc))
    say(f"keyed load {keyed_rate:g}/s against {url}; floods of {rates} requests/s without a key")
    print_json(
        bench_unauthenticated(
            url, keys, rates=flood_rates, duration=duration, keyed_rate=keyed_rate
        )
    )


KeyFileOption = Annotated[
    Path | None,
    typer.Option(
        envvar=f"{ENV}KEY_FILE",
        help="API keys with transactions:write, one a line (default: the bench's own, "
        "<state dir>/bench-api-keys, made when missing).",
    ),
]


def api_cpu(
    ctx: typer.Context,
    requests: Annotated[
        int, typer.Option(min=1, envvar=f"{ENV}REQUESTS", help="Measured requests.")
    ] = 10_000,
    users: Annotated[
        int, typer.Option(min=1, envvar=f"{ENV}USERS", help="Concurrent in-process callers.")
    ] = 50,
    fast_path: Annotated[
        bool, typer.Option(help="--no-fast-path: every request through FastAPI's route.")
    ] = True,
    key_file: KeyFileOption = None,
    count_calls: Annotated[
        bool,
        typer.Option(
            help="Also count function calls per request (a figure the machine's load does not "
            "move; the CPU figures then mean little)."
        ),
    ] = False,
) -> None:
    """CPU per POST /transactions of the API app alone, driven through ASGI in this process
    (no HTTP server, no load client), on the configured cluster; prints JSON.

    Steadier than `bench ingest`'s per-process figures on a shared machine.
    """
    from ledgerguard.load.bench.api_cpu import ApiCpuOptions, run_api_cpu

    settings = settings_of(ctx)
    options = ApiCpuOptions(
        requests=requests,
        users=users,
        fast_path=fast_path,
        key_file=key_file,
        count_calls=count_calls,
    )
    print_report(run_api_cpu, settings, options, progress=say)


def key_cache_refresh(
    ctx: typer.Context,
    keys: Annotated[
        int, typer.Option(min=1, envvar=f"{ENV}KEYS", help="Cached keys (bench keys used).")
    ] = 50,
    rounds: Annotated[
        int, typer.Option(min=1, envvar=f"{ENV}ROUNDS", help="Refreshes measured.")
    ] = 100,
    key_file: KeyFileOption = None,
) -> None:
    """CPU and `api_keys` queries of one worker's key-cache refresh: every cached key expired,
    then each asked once (what the cache costs every `ttl`); prints JSON."""
    from ledgerguard.load.bench.key_cache import KeyCacheOptions, run_key_cache_refresh

    settings = settings_of(ctx)
    options = KeyCacheOptions(keys=keys, rounds=rounds, key_file=key_file)
    print_report(run_key_cache_refresh, settings, options, progress=say)
