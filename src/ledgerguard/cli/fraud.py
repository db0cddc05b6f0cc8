"""`ledgerguard fraud ...`, `ledgerguard import ...` and `ledgerguard generate`: the fraud engine
from the command line (the same library calls as the Airflow DAGs)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from ledgerguard.cli.common import abort, err_console, print_json, say, settings_of
from ledgerguard.errors import LedgerGuardError

app = typer.Typer(
    help="Fraud analysis on the replica: analyze, compliance, evaluate, train.",
    no_args_is_help=True,
)
import_app = typer.Typer(
    help="Bulk imports into the primary (all or nothing).", no_args_is_help=True
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON only (for scripts).")]


def _midnight(day: datetime) -> datetime:
    return datetime.combine(day.date(), time(), tzinfo=UTC)


def _progress(description: str) -> Progress:
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )


@app.command()
def analyze(
    ctx: typer.Context,
    start: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="First day (UTC).")],
    end: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Day after the last one (default: start + 1 day)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Score [start, end) on the replica, store verdicts, write the reports; counts per rule."""
    from ledgerguard.fraud.pipeline import analyze_interval

    settings = settings_of(ctx)
    begin = _midnight(start)
    finish = _midnight(end) if end else begin + timedelta(days=1)
    try:
        with _progress("analysing") as bar:
            task = bar.add_task("analysing users", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            result = analyze_interval(settings, start=begin, end=finish, progress=progress)
    except LedgerGuardError as exc:
        abort(str(exc))
    if as_json:
        print_json(result.to_dict())
        return
    say(f"analysed {result.analysed} transactions, flagged {result.flagged}")
    for rule, count in sorted(result.counts_by_rule.items()):
        say(f"  {rule}: {count}")
    say(f"report: {result.report_path}")
    say(f"details: {result.details_path}")


@app.command()
def compliance(
    ctx: typer.Context,
    day: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="Business day (UTC).")],
    as_json: JsonFlag = False,
) -> None:
    """CTR-style report (users above 10,000 USD in the day) and structuring candidates."""
    from ledgerguard.fraud.reports.compliance import compliance_report

    try:
        report = compliance_report(settings_of(ctx), day=day.date())
    except LedgerGuardError as exc:
        abort(str(exc))
    paths = [str(p) for p in report.paths]
    if as_json:
        print_json(
            {
                "ctr_users": report.ctr_users,
                "structuring_users": report.structuring_users,
                "paths": paths,
            }
        )
        return
    say(
        f"{report.ctr_users} user(s) above the CTR line, {report.structuring_users} structuring candidate(s)"
    )
    for path in paths:
        say(f"  {path}")


@app.command()
def evaluate(
    ctx: typer.Context,
    transactions: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="Import-format CSV.")
    ],
    labels: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, help="external_id,is_fraud[,pattern] CSV."),
    ],
    as_json: JsonFlag = False,
) -> None:
    """Precision, recall and average precision per pattern of a labelled data set (in memory)."""
    import pandas as pd

    from ledgerguard.fraud.evaluate import evaluate as evaluate_frame
    from ledgerguard.fraud.evaluate import score_in_memory

    settings = settings_of(ctx)
    frame = pd.read_csv(transactions, dtype=str, keep_default_na=False)
    label_frame = pd.read_csv(labels, dtype={"external_id": str}, keep_default_na=False)
    moments = pd.to_datetime(frame["occurred_at"], utc=True, format="ISO8601")
    start = _midnight(moments.min().to_pydatetime())
    end = moments.max().to_pydatetime()
    try:
        scored = score_in_memory(
            frame,
            label_frame,
            start=start,
            end=_midnight(end) + timedelta(days=1),
            params=settings.fraud,
        )
    except (LedgerGuardError, KeyError, ValueError) as exc:
        abort(f"cannot evaluate {transactions}: {exc}")
    table = evaluate_frame(scored)
    if as_json:
        print_json(table.to_dict(orient="records"))
        return
    rich_table = Table(*[str(c) for c in table.columns], title="fraud engine evaluation")
    for row in table.itertuples(index=False):
        rich_table.add_row(*[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row])
    err_console.print(rich_table)


@app.command()
def train(
    ctx: typer.Context,
    transactions: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="Import-format CSV.")
    ],
    labels: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="external_id,is_fraud CSV.")
    ],
    out: Annotated[Path, typer.Option(help="Where to write the model (joblib).")] = Path(
        "models/fraud_model.joblib"
    ),
    test_days: Annotated[
        int, typer.Option(min=1, help="Last days held out to judge the model (a time split).")
    ] = 7,
    as_json: JsonFlag = False,
) -> None:
    """Train a model on the engine's window features; compare it with the rules on held-out days."""
    import pandas as pd

    from ledgerguard.fraud.engine.model import train_model

    settings = settings_of(ctx)
    frame = pd.read_csv(transactions, dtype=str, keep_default_na=False)
    label_frame = pd.read_csv(labels, dtype={"external_id": str}, keep_default_na=False)
    try:
        with err_console.status("building features and training"):
            report = train_model(
                frame, label_frame, out=out, params=settings.fraud, test_days=test_days
            )
    except (LedgerGuardError, KeyError, ValueError) as exc:
        abort(f"cannot train on {transactions}: {exc}")
    if as_json:
        print_json(report.to_dict())
        return
    say(
        f"trained on {report.train_rows:,} rows, judged on {report.test_rows:,} "
        f"({report.test_frauds:,} frauds) since {report.test_since}: average precision "
        f"model {report.average_precision_model:.3f}, rules {report.average_precision_rules:.3f}; "
        f"model written to {report.model_path}"
    )


T = TypeVar("T")


def _run_import(path: Path, what: str, run: Callable[[Callable[[int, int], None]], T]) -> T:
    """`run(progress)` under a progress bar; a refused file lists its bad lines and exits 1."""
    from ledgerguard.fraud.errors import ImportRejected

    try:
        with _progress("importing") as bar:
            task = bar.add_task(what, total=None)
            return run(lambda done, total: bar.update(task, completed=done, total=total))
    except ImportRejected as exc:
        for error in exc.errors[:50]:
            err_console.print(f"line {error.line}: {error.message}", highlight=False)
        abort(f"{path} refused, nothing was loaded: {len(exc.errors)} bad row(s)")
    except LedgerGuardError as exc:
        abort(str(exc))


@import_app.command("transactions")
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


@import_app.command("labels")
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


def generate(
    rows: Annotated[int, typer.Option(min=100, help="About this many transactions.")] = 100_000,
    days: Annotated[int, typer.Option(min=1, help="Days of history.")] = 60,
    start: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="First day.")] = datetime(
        2025, 1, 1
    ),
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 0,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("data"),
    name: Annotated[str, typer.Option(help="File name prefix.")] = "synthetic",
) -> None:
    """Write a synthetic labelled data set: `<name>_transactions.csv` + `<name>_labels.csv`."""
    from ledgerguard.fraud.synthetic import (
        config_for_rows,
        write_dataset,
    )
    from ledgerguard.fraud.synthetic import (
        generate as generate_data,
    )

    config = config_for_rows(rows, days=days, start=start.date(), seed=seed)
    data = generate_data(config)
    tx_path, labels_path = write_dataset(data, out, name=name)
    say(f"{len(data.transactions)} transactions → {tx_path}")
    say(f"{int(data.labels['is_fraud'].astype(int).sum())} fraud labels → {labels_path}")
