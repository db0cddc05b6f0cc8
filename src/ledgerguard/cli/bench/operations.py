"""`bench review-queue` and `bench backup`: the analyst queue at volume, backups and restores."""

from __future__ import annotations

from typing import Annotated

import typer

from ledgerguard.cli.bench.options import (
    ENV,
    RowsOption,
    SeedOption,
    print_report,
)
from ledgerguard.cli.common import (
    say,
    settings_of,
)


def review_queue(
    ctx: typer.Context,
    alerts: Annotated[
        int,
        typer.Option(
            "--alerts",
            "-n",
            min=1_000,
            envvar=f"{ENV}ALERTS",
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
    print_report(bench_review_queue, settings, alerts, repeats=repeats, remove=remove)


def backup(
    ctx: typer.Context,
    rows: RowsOption = 1_000_000,
    seed: SeedOption = 7,
    duration: Annotated[
        float,
        typer.Option(
            "--duration", "-d", min=1, envvar=f"{ENV}DURATION", help="Seconds of ingest load."
        ),
    ] = 30.0,
    users: Annotated[
        int, typer.Option("--users", "-u", min=1, envvar=f"{ENV}USERS", help="API clients.")
    ] = 50,
) -> None:
    """Backup, verify and point-in-time restore times, and the binlog archive's lag under the
    ingest load; prints JSON.

    Targets: recovery point <= 5 s of committed transactions; restore to a point <= 10 min for
    13.4M rows.
    """
    from ledgerguard.load.bench.backup import bench_backup

    settings = settings_of(ctx)
    print_report(
        bench_backup, settings, rows, seed=seed, load_seconds=duration, users=users, progress=say
    )
