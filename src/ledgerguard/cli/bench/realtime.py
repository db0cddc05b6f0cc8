"""`bench realtime`, `bench scorer-cpu`, `bench verdict-writes`: the streaming scorer."""

from __future__ import annotations

from typing import Annotated

import typer

from ledgerguard.cli.bench.options import (
    ENV,
    print_report,
)
from ledgerguard.cli.common import (
    say,
    settings_of,
)


def realtime(
    ctx: typer.Context,
    duration: Annotated[
        float,
        typer.Option(
            "--duration",
            "-d",
            min=1,
            envvar=f"{ENV}DURATION",
            help="Measured seconds of each API phase (without, then with the scorer).",
        ),
    ] = 30.0,
    users: Annotated[
        int,
        typer.Option(
            "--users", "-u", min=1, max=1000, envvar=f"{ENV}USERS", help="Concurrent clients."
        ),
    ] = 50,
    state_users: Annotated[
        int,
        typer.Option(
            min=1_000,
            envvar=f"{ENV}STATE_USERS",
            help="Users whose windows the memory check holds (the issue: 1M).",
        ),
    ] = 1_000_000,
    customers: Annotated[
        int,
        typer.Option(
            min=1,
            envvar=f"{ENV}CUSTOMERS",
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
    print_report(run_realtime, settings, options, progress=say)


def scorer_cpu(
    ctx: typer.Context,
    transactions: Annotated[
        int,
        typer.Option(
            "--transactions",
            "-n",
            min=100,
            envvar=f"{ENV}TRANSACTIONS",
            help="New transactions replayed through the scorer.",
        ),
    ] = 20_000,
    users: Annotated[
        int, typer.Option(min=1, envvar=f"{ENV}USERS", help="Users with history.")
    ] = 20_000,
    rows_per_commit: Annotated[
        int,
        typer.Option(
            min=1,
            envvar=f"{ENV}ROWS_PER_COMMIT",
            help="Transactions per COMMIT (the API's group commit makes several under load).",
        ),
    ] = 4,
    batch_rows: Annotated[
        int,
        typer.Option(
            min=1,
            envvar=f"{ENV}BATCH_ROWS",
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
    print_report(run_scorer_cpu, settings, options, progress=say)


def verdict_writes(
    ctx: typer.Context,
    batches: Annotated[
        int,
        typer.Option(min=1, envvar=f"{ENV}BATCHES", help="Batches written per layout and round."),
    ] = 50,
    batch_rows: Annotated[
        int,
        typer.Option(
            min=1,
            envvar=f"{ENV}BATCH_ROWS",
            help="Verdicts per batch (300 = 100 ms at 3,000 TPS).",
        ),
    ] = 300,
    rounds: Annotated[
        int,
        typer.Option(
            min=1, envvar=f"{ENV}ROUNDS", help="Times every variant runs (interleaved, summed)."
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
    print_report(run_verdict_writes, settings, options, progress=say)
