"""`ledgerguard fraud ...`: the fraud engine from the command line (the same library calls as the
Airflow DAGs). Imports are `ledgerguard import ...` (`cli/imports.py`), synthetic data
`ledgerguard generate` (`cli/generate.py`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

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
from ledgerguard.utc import utc_midnight

app = typer.Typer(
    help="Fraud analysis on the replica: analyze, compliance, evaluate, train.",
    no_args_is_help=True,
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
    begin = utc_midnight(start, assume_utc=True)
    finish = utc_midnight(end, assume_utc=True) if end else begin + timedelta(days=1)
    try:
        with progress_bar() as bar:
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
    start = utc_midnight(moments.min().to_pydatetime(), assume_utc=True)
    end = moments.max().to_pydatetime()
    try:
        scored = score_in_memory(
            frame,
            label_frame,
            start=start,
            end=utc_midnight(end, assume_utc=True) + timedelta(days=1),
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
