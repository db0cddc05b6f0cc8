"""`ledgerguard bench ...`: repeatable benchmarks whose JSON goes into benchmarks/README.md."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ledgerguard.cli.common import (
    abort,
    duration_option,
    err_console,
    live_option,
    print_json,
    progress_bar,
    require_servers,
    say,
    settings_of,
    users_option,
    warmup_option,
)
from ledgerguard.errors import LedgerGuardError
from ledgerguard.load.display import LiveDisplay

app = typer.Typer(help="Benchmarks of this machine's cluster and API.", no_args_is_help=True)

_ENV = "LEDGERGUARD_BENCH_"
Users = users_option(
    _ENV, maximum=1000, help="Concurrent clients: sysbench threads and API virtual users."
)
Duration = duration_option(
    _ENV, minimum=1, help="Measured seconds of each phase (sysbench, then the API)."
)
Warmup = warmup_option(_ENV, help="Unmeasured seconds before each phase.")
Live = live_option(_ENV, help="Live figures on stderr during the API phase.")

#: The synthetic data set of `bench analysis` and `bench backup` (loaded once per size and seed).
RowsOption = Annotated[
    int,
    typer.Option(
        "--rows",
        "-n",
        min=1_000,
        envvar=f"{_ENV}ROWS",
        help="Synthetic transactions to load (once); the original design's daily capacity is "
        "13,400,000.",
    ),
]
SeedOption = Annotated[int, typer.Option(help="Data set seed (same seed and size: loaded once).")]


def _print_report(run: Callable[..., dict[str, Any]], *args: Any, **kwargs: Any) -> None:
    """`run(*args, **kwargs)`'s report as JSON on stdout; its expected failures as `abort`."""
    try:
        report = run(*args, **kwargs)
    except LedgerGuardError as exc:
        abort(str(exc))
    print_json(report)


@app.command()
def ingest(
    ctx: typer.Context,
    duration: Duration = 30.0,
    users: Users = 50,
    api_workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            envvar=f"{_ENV}API_WORKERS",
            help="Workers of the API this command starts (default LEDGERGUARD_API_WORKERS); "
            "refused if a running API has another count.",
        ),
    ] = None,
    warmup: Warmup = 2.0,
    ceiling: Annotated[
        bool,
        typer.Option(
            envvar=f"{_ENV}CEILING",
            help="Measure the primary's ceiling with sysbench (--no-ceiling: the API only).",
        ),
    ] = True,
    keep_running: Annotated[
        bool,
        typer.Option(
            envvar=f"{_ENV}KEEP_RUNNING",
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


@app.command()
def analysis(
    ctx: typer.Context,
    rows: RowsOption = 1_000_000,
    seed: SeedOption = 7,
    start: Annotated[
        datetime, typer.Option(formats=["%Y-%m-%d"], help="First day of the synthetic data.")
    ] = datetime(2025, 1, 1),
    all_days: Annotated[
        bool,
        typer.Option(
            "--all-days",
            help="Score every transaction of the data set, not only those after the first "
            "30 days (whose trailing windows are complete).",
        ),
    ] = False,
) -> None:
    """Time the nightly analysis over N transactions on the replica; prints JSON.

    Target: 13.4M transactions in <= 3 minutes with <= 2 GiB peak memory on 2 cores.
    """
    from ledgerguard.load.bench.analysis import bench_analysis

    settings = settings_of(ctx)
    require_servers(settings)  # before minutes of data generation, not after
    say(f"loading up to {rows:,} synthetic transactions (once per seed and size), then analysing")
    try:
        with progress_bar() as bar:
            task = bar.add_task("checking for a stored data set", total=None)
            result = bench_analysis(
                settings,
                rows,
                seed=seed,
                start=start.date(),
                history_days=0 if all_days else 30,
                progress=lambda stage, done, total: bar.update(
                    task, description=stage, completed=done, total=total
                ),
            )
    except LedgerGuardError as exc:
        abort(str(exc))
    print_json(result)


@app.command()
def realtime(
    ctx: typer.Context,
    duration: Annotated[
        float,
        typer.Option(
            "--duration",
            "-d",
            min=1,
            envvar=f"{_ENV}DURATION",
            help="Measured seconds of each API phase (without, then with the scorer).",
        ),
    ] = 30.0,
    users: Annotated[
        int,
        typer.Option(
            "--users", "-u", min=1, max=1000, envvar=f"{_ENV}USERS", help="Concurrent clients."
        ),
    ] = 50,
    state_users: Annotated[
        int,
        typer.Option(
            min=1_000,
            envvar=f"{_ENV}STATE_USERS",
            help="Users whose windows the memory check holds (the issue: 1M).",
        ),
    ] = 1_000_000,
    customers: Annotated[
        int,
        typer.Option(
            min=1,
            envvar=f"{_ENV}CUSTOMERS",
            help="Distinct customers of the load (10000: `ledgerguard load`'s default, whose "
            "customers pay so often that about half the payments are flagged).",
        ),
    ] = 1_000_000,
) -> None:
    """The API at N clients without, then with the streaming scorer; commit -> verdict
    latency from the verdict timestamps; scorer CPU per transaction and RSS; prints JSON.

    Targets: verdict p99 <= 500 ms at >= 3,000 TPS, API TPS with the scorer >= 0.85x without,
    <= 1 GiB with 1M users' windows.
    """
    from ledgerguard.load.bench.realtime import RealtimeOptions, run_realtime

    settings = settings_of(ctx)
    options = RealtimeOptions(
        duration=duration, users=users, state_users=state_users, customers=customers
    )
    _print_report(run_realtime, settings, options, progress=say)


@app.command("scorer-cpu")
def scorer_cpu(
    ctx: typer.Context,
    transactions: Annotated[
        int,
        typer.Option(
            "--transactions",
            "-n",
            min=100,
            envvar=f"{_ENV}TRANSACTIONS",
            help="New transactions replayed through the scorer.",
        ),
    ] = 20_000,
    users: Annotated[
        int, typer.Option(min=1, envvar=f"{_ENV}USERS", help="Users with history.")
    ] = 20_000,
    rows_per_commit: Annotated[
        int,
        typer.Option(
            min=1,
            envvar=f"{_ENV}ROWS_PER_COMMIT",
            help="Transactions per COMMIT (the API's group commit makes several under load).",
        ),
    ] = 4,
    batch_rows: Annotated[
        int,
        typer.Option(
            min=1,
            envvar=f"{_ENV}BATCH_ROWS",
            help="Transactions per micro-batch (300 = 100 ms at 3,000 TPS).",
        ),
    ] = 300,
    skewed: Annotated[
        bool,
        typer.Option(
            help="Draw customers with the load generator's law (a few pay many times a "
            "second, as in `bench realtime`) instead of uniformly."
        ),
    ] = False,
    profile: Annotated[
        bool, typer.Option(help="Also list the functions with the most CPU (cProfile).")
    ] = False,
) -> None:
    """CPU per transaction of each stage of the streaming scorer (binlog decoding, state,
    scoring, verdict writes), replayed from the replica's binlog; prints JSON.

    CPU time, not wall time: meaningful on a busy machine. Target: <= 100 µs per transaction.
    """
    from ledgerguard.load.bench.scorer_cpu import ScorerCpuOptions, run_scorer_cpu

    settings = settings_of(ctx)
    options = ScorerCpuOptions(
        transactions=transactions,
        users=users,
        rows_per_commit=rows_per_commit,
        batch_rows=batch_rows,
        skewed=skewed,
        profile=profile,
    )
    _print_report(run_scorer_cpu, settings, options, progress=say)


@app.command("verdict-writes")
def verdict_writes(
    ctx: typer.Context,
    batches: Annotated[
        int,
        typer.Option(min=1, envvar=f"{_ENV}BATCHES", help="Batches written per layout and round."),
    ] = 50,
    batch_rows: Annotated[
        int,
        typer.Option(
            min=1,
            envvar=f"{_ENV}BATCH_ROWS",
            help="Verdicts per batch (300 = 100 ms at 3,000 TPS).",
        ),
    ] = 300,
    rounds: Annotated[
        int,
        typer.Option(
            min=1, envvar=f"{_ENV}ROUNDS", help="Times every variant runs (interleaved, summed)."
        ),
    ] = 3,
) -> None:
    """The database servers' CPU and binlog bytes per real-time verdict, per way of storing
    verdicts (wide `fraud_scores` rows, without secondary indexes, the narrow
    `realtime_verdicts`, the scorer's split), with and without MariaDB's row-event
    annotations, and the scorer's CPU to read and skip them; prints JSON."""
    from ledgerguard.load.bench.verdict_writes import VerdictWritesOptions, run_verdict_writes

    settings = settings_of(ctx)
    options = VerdictWritesOptions(batches=batches, batch_rows=batch_rows, rounds=rounds)
    _print_report(run_verdict_writes, settings, options, progress=say)


@app.command("review-queue")
def review_queue(
    ctx: typer.Context,
    alerts: Annotated[
        int,
        typer.Option(
            "--alerts",
            "-n",
            min=1_000,
            envvar=f"{_ENV}ALERTS",
            help="Flagged verdicts (stored once).",
        ),
    ] = 1_000_000,
    repeats: Annotated[int, typer.Option(min=1, help="Timed runs of each page.")] = 20,
    remove: Annotated[
        bool, typer.Option("--remove", help="Delete the synthetic alerts afterwards.")
    ] = False,
) -> None:
    """Time the analyst queue's keyset pages (first and deep) at N alerts; prints JSON."""
    from ledgerguard.load.bench.review_queue import bench_review_queue

    settings = settings_of(ctx)
    say(f"storing up to {alerts:,} synthetic alerts (once), then timing queue pages on the replica")
    _print_report(bench_review_queue, settings, alerts, repeats=repeats, remove=remove)


@app.command()
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


@app.command()
def backup(
    ctx: typer.Context,
    rows: RowsOption = 1_000_000,
    seed: SeedOption = 7,
    duration: Annotated[
        float,
        typer.Option(
            "--duration", "-d", min=1, envvar=f"{_ENV}DURATION", help="Seconds of ingest load."
        ),
    ] = 30.0,
    users: Annotated[
        int, typer.Option("--users", "-u", min=1, envvar=f"{_ENV}USERS", help="API clients.")
    ] = 50,
) -> None:
    """Backup, verify and point-in-time restore times, and the binlog archive's lag under the
    ingest load; prints JSON.

    Targets: recovery point <= 5 s of committed transactions; restore to a point <= 10 min for
    13.4M rows.
    """
    from ledgerguard.load.bench.backup import bench_backup

    settings = settings_of(ctx)
    _print_report(
        bench_backup, settings, rows, seed=seed, load_seconds=duration, users=users, progress=say
    )


KeyFileOption = Annotated[
    Path | None,
    typer.Option(
        envvar=f"{_ENV}KEY_FILE",
        help="API keys with transactions:write, one a line (default: the bench's own, "
        "<state dir>/bench-api-keys, made when missing).",
    ),
]


@app.command("api-cpu")
def api_cpu(
    ctx: typer.Context,
    requests: Annotated[
        int, typer.Option(min=1, envvar=f"{_ENV}REQUESTS", help="Measured requests.")
    ] = 10_000,
    users: Annotated[
        int, typer.Option(min=1, envvar=f"{_ENV}USERS", help="Concurrent in-process callers.")
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
    _print_report(run_api_cpu, settings, options, progress=say)


@app.command("key-cache-refresh")
def key_cache_refresh(
    ctx: typer.Context,
    keys: Annotated[
        int, typer.Option(min=1, envvar=f"{_ENV}KEYS", help="Cached keys (bench keys used).")
    ] = 50,
    rounds: Annotated[
        int, typer.Option(min=1, envvar=f"{_ENV}ROUNDS", help="Refreshes measured.")
    ] = 100,
    key_file: KeyFileOption = None,
) -> None:
    """CPU and `api_keys` queries of one worker's key-cache refresh: every cached key expired,
    then each asked once (what the cache costs every `ttl`); prints JSON."""
    from ledgerguard.load.bench.key_cache import KeyCacheOptions, run_key_cache_refresh

    settings = settings_of(ctx)
    options = KeyCacheOptions(keys=keys, rounds=rounds, key_file=key_file)
    _print_report(run_key_cache_refresh, settings, options, progress=say)


def _numbers(values: list[str], kind: type[int] | type[float], option: str) -> tuple[Any, ...]:
    """Repeated or comma-separated numbers of a list option."""
    try:
        return tuple(kind(part) for value in values for part in value.split(",") if part.strip())
    except ValueError:
        abort(f"{option}: expected numbers, repeated or separated by commas, not {values}")


@app.command()
def detection(
    seeds: Annotated[
        list[str] | None,
        typer.Option(
            help="Generator seeds, repeated or comma-separated.", show_default="101,102,103"
        ),
    ] = None,
    rows: Annotated[int, typer.Option(min=1_000, help="Transactions per data set.")] = 528_000,
    days: Annotated[int, typer.Option(min=2, help="Days of traffic generated.")] = 90,
    scored_days: Annotated[
        int, typer.Option(min=1, help="Last days scored (the model trains on the others).")
    ] = 30,
    terminals_per_customer: Annotated[
        list[str] | None,
        typer.Option(
            help="Terminal densities, repeated or comma-separated.", show_default="0.5,2.0"
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="NAME=VALUE",
            help="Generator parameter (SyntheticConfig field), e.g. terminal_compromise_days=14; "
            "repeatable.",
        ),
    ] = None,
    terminal_profile: Annotated[
        bool,
        typer.Option(
            "--terminal-profile",
            help="Turn on the terminal profile features (new-customer share, amount z-score).",
        ),
    ] = False,
    param: Annotated[
        list[str] | None,
        typer.Option(
            metavar="NAME=VALUE",
            help="Engine parameter (FraudParameters field), e.g. model_score=noisy_or; repeatable.",
        ),
    ] = None,
    dump_errors: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR",
            help="Write each run's misses and false alarms of rules + model to DIR as CSV.",
        ),
    ] = None,
) -> None:
    """Detection quality (precision, recall, AP per pattern, per rule, per 10-day block) of the
    rules and rules + model on fresh generator seeds, in memory (no cluster); prints JSON.

    Each seed and density: train on all but the last --scored-days, score those.
    """
    from ledgerguard.load.bench.detection import (
        DetectionOptions,
        engine_overrides,
        generator_overrides,
        run_detection,
    )

    defaults = DetectionOptions()
    try:
        options = DetectionOptions(
            seeds=_numbers(seeds, int, "--seeds") if seeds else defaults.seeds,
            rows=rows,
            days=days,
            scored_days=scored_days,
            terminals_per_customer=(
                _numbers(terminals_per_customer, float, "--terminals-per-customer")
                if terminals_per_customer
                else defaults.terminals_per_customer
            ),
            overrides=generator_overrides(set_ or []),
            terminal_profile=terminal_profile,
            engine=engine_overrides(param or []),
            dump_errors=dump_errors,
        )
    except LedgerGuardError as exc:
        abort(str(exc))
    _print_report(run_detection, options, progress=say)
