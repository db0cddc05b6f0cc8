"""`ledgerguard fraud ...`: the fraud engine from the command line (the same library calls as the
Airflow DAGs). Imports are `ledgerguard import ...` (`cli/imports.py`), synthetic data
`ledgerguard generate` (`cli/generate.py`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ledgerguard.cli.common import (
    JsonFlag,
    abort,
    err_console,
    fraud_parameters_of,
    print_json,
    progress_bar,
    say,
    settings_of,
)
from ledgerguard.errors import LedgerGuardError
from ledgerguard.utc import utc_midnight

app = typer.Typer(
    help="Fraud analysis on the replica: analyze, compliance, evaluate, train, backtest.",
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
    say(
        f"parameters: set {result.parameter_set} (approved in the web app)"
        if result.parameter_set
        else "parameters: the settings (no parameter set approved)"
    )
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
    since: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"], help="Score from this day on (earlier days feed the windows)."
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="Model version of the store ('none': rules alone; default: promoted)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Precision, recall and average precision per pattern of a labelled data set (in memory)."""
    import pandas as pd

    from ledgerguard.fraud.backtest import choose_model
    from ledgerguard.fraud.evaluate import evaluate as evaluate_frame
    from ledgerguard.fraud.evaluate import read_labelled_files, score_in_memory

    params = fraud_parameters_of(ctx)  # in memory: no server, so no password needed
    try:
        frame, label_frame = read_labelled_files(transactions, labels)
        moments = pd.to_datetime(frame["occurred_at"], utc=True, format="ISO8601")
        start = utc_midnight(since or moments.min().to_pydatetime(), assume_utc=True)
        end = moments.max().to_pydatetime()
        scored = score_in_memory(
            frame,
            label_frame,
            start=start,
            end=utc_midnight(end, assume_utc=True) + timedelta(days=1),
            params=params,
            model=choose_model(params, model),
        )
    except (LedgerGuardError, KeyError, ValueError) as exc:
        abort(f"cannot evaluate {transactions} with {labels}: {exc}")
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
        Path | None,
        typer.Argument(
            exists=True, dir_okay=False, help="Import-format CSV (default: read the replica)."
        ),
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Argument(exists=True, dir_okay=False, help="external_id,is_fraud CSV."),
    ] = None,
    until: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"], help="Replica training: labels known by this day (default today)."
        ),
    ] = None,
    days: Annotated[
        int | None,
        typer.Option(
            min=2,
            help="Replica training: days of history (LEDGERGUARD_FRAUD__MODEL_TRAINING_DAYS).",
        ),
    ] = None,
    store: Annotated[
        Path | None,
        typer.Option(help="Model store folder (default LEDGERGUARD_FRAUD__MODEL_STORE_DIR)."),
    ] = None,
    test_days: Annotated[
        int, typer.Option(min=1, help="Last days held out to judge the model (a time split).")
    ] = 7,
    promote: Annotated[
        bool, typer.Option(help="Promote the new version when it passes the gate.")
    ] = True,
    as_json: JsonFlag = False,
) -> None:
    """Train a model version on the engine's window features (from the replica's transactions
    and labels, or from CSV files); promote it if it beats the rules alone and the promoted
    version on the held-out days."""

    from ledgerguard.fraud.engine.fitting import train_model
    from ledgerguard.fraud.evaluate import read_labelled_files
    from ledgerguard.fraud.training import train_from_replica

    if (transactions is None) != (labels is None):
        abort("give both TRANSACTIONS and LABELS files, or neither (then the replica is read)")
    try:
        with err_console.status("building features and training"):
            if transactions is not None and labels is not None:
                # in memory: the fraud parameters alone, no database password needed
                report = train_model(
                    *read_labelled_files(transactions, labels),
                    store=store,
                    params=fraud_parameters_of(ctx),
                    test_days=test_days,
                    promote=promote,
                )
            else:
                report = train_from_replica(
                    settings_of(ctx),
                    until=utc_midnight(until or datetime.now(UTC), assume_utc=True),
                    days=days,
                    test_days=test_days,
                    store=store,
                    promote=promote,
                )
    except (LedgerGuardError, KeyError, ValueError) as exc:
        abort(f"cannot train: {exc}")
    if as_json:
        print_json(report.to_dict())
        return
    say(
        f"trained on {report.train_rows:,} rows, judged on {report.test_rows:,} "
        f"({report.test_frauds:,} frauds) since {report.test_since}: average precision "
        f"rules {report.average_precision_rules:.3f}, rules + model "
        f"{report.average_precision_combined:.3f}; flag threshold {report.threshold:.4f} "
        f"(precision {report.validation_precision:.3f}, recall {report.validation_recall:.3f} "
        f"over {report.threshold_windows} validation windows; score "
        f"{report.score_combination.replace('_', '-')}; rule {report.threshold_rule}: "
        f"{report.threshold_reason}; per window "
        f"{', '.join('-' if p is None else f'{p:.3f}' for p in report.window_precision)}); "
        f"version {report.version} in {report.model_path}; {report.promotion_reason}"
    )


@app.command()
def backtest(
    ctx: typer.Context,
    start: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="First day (UTC).")],
    end: Annotated[
        datetime, typer.Option(formats=["%Y-%m-%d"], help="Day after the last one (UTC).")
    ],
    params: Annotated[
        Path | None,
        typer.Option(
            exists=True, dir_okay=False, help="Draft parameters: a JSON object of FraudParameters."
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="Draft model version of the store ('none': rules alone; default: promoted)."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Score a past interval on the replica with a draft configuration beside the current one;
    precision, recall, average precision overall and per rule. Writes nothing."""
    from ledgerguard.fraud.backtest import backtest as run_backtest
    from ledgerguard.fraud.backtest import params_from_file
    from ledgerguard.fraud.parameter_sets import active_parameters

    try:
        # "current" is what the nightly run uses: the settings + the approved parameter set
        base = settings_of(ctx)
        settings = active_parameters(base).settings(base)
        draft = params_from_file(params, settings.fraud) if params is not None else None
        with err_console.status("scoring the interval twice (nothing is written)"):
            result = run_backtest(
                settings,
                start=utc_midnight(start, assume_utc=True),
                end=utc_midnight(end, assume_utc=True),
                params=draft,
                model_version=model,
            )
    except LedgerGuardError as exc:
        abort(f"cannot backtest: {exc}")
    if as_json:
        print_json(result)
        return
    table = Table("", "current", "draft", title=f"backtest {result['start']} .. {result['end']}")
    current, drafted = result["current"], result["draft"]
    for key in (
        "model_version",
        "analysed",
        "frauds",
        "flagged",
        "precision",
        "recall",
        "average_precision",
    ):
        table.add_row(key, _cell(current[key]), _cell(drafted[key]))
    for rule in sorted(set(current["rules"]) | set(drafted["rules"])):
        for key in ("fired", "precision", "recall"):
            table.add_row(
                f"{rule} {key}",
                _cell(current["rules"].get(rule, {}).get(key)),
                _cell(drafted["rules"].get(rule, {}).get(key)),
            )
    err_console.print(table)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)
