"""`bench analysis` and `bench detection`: the nightly fraud analysis's speed and the engine's
detection quality.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from ledgerguard.cli.bench.options import (
    RowsOption,
    SeedOption,
    print_report,
)
from ledgerguard.cli.common import (
    abort,
    print_json,
    progress_bar,
    require_servers,
    say,
    settings_of,
)
from ledgerguard.errors import LedgerGuardError


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


def _numbers(values: list[str], kind: type[int] | type[float], option: str) -> tuple[Any, ...]:
    """Repeated or comma-separated numbers of a list option."""
    try:
        return tuple(kind(part) for value in values for part in value.split(",") if part.strip())
    except ValueError:
        abort(f"{option}: expected numbers, repeated or separated by commas, not {values}")


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
    print_report(run_detection, options, progress=say)
