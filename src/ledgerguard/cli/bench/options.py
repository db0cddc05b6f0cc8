"""What the `bench` commands share: the environment prefix of their options, the options
several of them take, and how a report is printed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from ledgerguard.cli.common import (
    abort,
    duration_option,
    live_option,
    print_json,
    users_option,
    warmup_option,
)
from ledgerguard.errors import LedgerGuardError

ENV = "LEDGERGUARD_BENCH_"
Users = users_option(
    ENV, maximum=1000, help="Concurrent clients: sysbench threads and API virtual users."
)
Duration = duration_option(
    ENV, minimum=1, help="Measured seconds of each phase (sysbench, then the API)."
)
Warmup = warmup_option(ENV, help="Unmeasured seconds before each phase.")
Live = live_option(ENV, help="Live figures on stderr during the API phase.")

#: The synthetic data set of `bench analysis` and `bench backup` (loaded once per size and seed).
RowsOption = Annotated[
    int,
    typer.Option(
        "--rows",
        "-n",
        min=1_000,
        envvar=f"{ENV}ROWS",
        help="Synthetic transactions to load (once); the original design's daily capacity is "
        "13,400,000.",
    ),
]
SeedOption = Annotated[int, typer.Option(help="Data set seed (same seed and size: loaded once).")]


def print_report(run: Callable[..., dict[str, Any]], *args: Any, **kwargs: Any) -> None:
    """`run(*args, **kwargs)`'s report as JSON on stdout; its expected failures as `abort`."""
    try:
        report = run(*args, **kwargs)
    except LedgerGuardError as exc:
        abort(str(exc))
    print_json(report)
