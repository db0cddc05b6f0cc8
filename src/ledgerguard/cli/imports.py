"""`ledgerguard import ...`: all-or-nothing bulk loads of transactions and labels into the primary."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from ledgerguard.cli.common import (
    JsonFlag,
    abort,
    err_console,
    print_json,
    progress_bar,
    say,
    settings_of,
)
from ledgerguard.errors import LedgerGuardError

app = typer.Typer(help="Bulk imports into the primary (all or nothing).", no_args_is_help=True)

T = TypeVar("T")


def _run_import(path: Path, what: str, run: Callable[[Callable[[int, int], None]], T]) -> T:
    """`run(progress)` under a progress bar; a refused file lists its bad lines and exits 1."""
    from ledgerguard.fraud.errors import ImportRejected

    try:
        with progress_bar() as bar:
            task = bar.add_task(what, total=None)
            return run(lambda done, total: bar.update(task, completed=done, total=total))
    except ImportRejected as exc:
        for error in exc.errors[:50]:
            err_console.print(f"line {error.line}: {error.message}", highlight=False)
        abort(f"{path} refused, nothing was loaded: {len(exc.errors)} bad row(s)")
    except LedgerGuardError as exc:
        abort(str(exc))


@app.command("transactions")
def import_transactions_cmd(
    ctx: typer.Context,
    path: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            help="external_id,user_id,terminal_id,amount,currency,occurred_at",
        ),
    ],
    as_json: JsonFlag = False,
) -> None:
    """Bulk-load transactions into the primary; any bad row refuses the whole file (line numbers)."""
    from ledgerguard.fraud.imports.importer import import_transactions

    result = _run_import(
        path,
        "importing rows",
        lambda progress: import_transactions(settings_of(ctx), path, progress=progress),
    )
    if as_json:
        print_json(result.__dict__ | {"rows_per_second": result.rows_per_second})
        return
    say(
        f"imported {result.inserted} rows ({result.skipped} already present) in "
        f"{result.seconds:.1f} s, {result.rows_per_second:,.0f} rows/s via {result.method}"
    )


@app.command("labels")
def import_labels_cmd(
    ctx: typer.Context,
    path: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="external_id,is_fraud[,labelled_at]")
    ],
) -> None:
    """Upsert fraud labels (chargebacks, analyst decisions); the whole file or nothing."""
    from ledgerguard.fraud.imports.importer import import_labels

    result = _run_import(
        path,
        "looking up and storing labels",
        lambda progress: import_labels(settings_of(ctx), path, progress=progress),
    )
    say(f"stored {result.rows} labels ({result.fraud} fraud) in {result.seconds:.1f} s")
