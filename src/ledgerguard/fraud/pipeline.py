"""The nightly analysis: replica pages in, verdicts to `fraud_scores`, CSV reports out.

`analyze_interval` is the one entry point the Airflow DAG and the CLI call. For an interval
[start, end) (timezone-aware UTC) it

1. waits for the replica to apply what the primary has committed (`wait_for_replica`: verdicts
   of earlier runs are read back to be rewritten), then opens one consistent snapshot of the
   replica as `app_user`;
2. reads the per-(terminal, day) transaction and confirmed-fraud counts needed by
   `terminal_risk` (all users: terminals are shared across user buckets), and with
   `terminal_profile_features` the terminals' profile of the days before [start, end) in a
   first pass over all users' pages (`fraud.terminal_profile`);
3. reads the transactions of [start - lookback, end) page by page (ranges of user ids, only the
   users of `bucket` when `buckets > 1`), fills missing USD amounts at the ECB rate, and scores
   each page with `scoring.score_frame` (parameters: the settings with the web app's approved
   parameter set on top, `parameter_sets.active_parameters`); only rows inside [start, end)
   are scored and counted, the lookback only feeds the trailing windows;
4. upserts the verdicts on the primary as the API account, one transaction per page; up to
   `page_threads` pages are scored and written at once, one thread each (`page_threads`);
5. for an unbucketed run, writes the reports from `fraud_scores` on the replica
   (`merge_reports`, after waiting for the replica again).

A bucketed run (mapped Airflow tasks, `bucket` = 0..buckets-1, users split by
`user_id % buckets`) writes verdicts only; one task after all buckets calls `merge_reports`.
Per-user windows never cross buckets and terminal counts are global, so bucketed and unbucketed
runs give the same verdicts and byte-identical reports.

Idempotent: the same interval over the same data leaves `fraud_scores` and the report bytes as
they were. Rows stored by an earlier run are always rewritten, so a verdict that went back below
`store_min_score` is lowered rather than left stale.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ledgerguard.db.engines import writer_engine
from ledgerguard.db.retry import in_transaction
from ledgerguard.fraud.engine.fx import fill_missing_usd
from ledgerguard.fraud.engine.rules import RULE_IDS
from ledgerguard.fraud.engine.scoring import score_frame
from ledgerguard.fraud.errors import FraudAnalysisError
from ledgerguard.fraud.page_threads import in_parallel
from ledgerguard.fraud.parameter_sets import active_parameters
from ledgerguard.fraud.reader import ReplicaReader, wait_for_replica
from ledgerguard.fraud.reports.fraud_report import write_fraud_reports
from ledgerguard.fraud.store import upsert_scores
from ledgerguard.fraud.terminal_profile import replica_terminal_history
from ledgerguard.money import FxRates
from ledgerguard.settings import Settings
from ledgerguard.settings.fraud import FraudParameters
from ledgerguard.utc import utc_midnight

if TYPE_CHECKING:
    from ledgerguard.fraud.engine.model import FraudModel

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ReportPaths:
    report_path: Path
    details_path: Path
    flagged: int


@dataclass(frozen=True)
class AnalysisResult:
    """What one run (or one bucket of a run) did; `to_dict()` is small and JSON-able (XCom)."""

    start: datetime
    end: datetime
    bucket: int
    buckets: int
    analysed: int
    flagged: int
    counts_by_rule: dict[str, int]
    no_usd_rate: int
    stored: int
    rows_read: int
    pages: int
    seconds: float
    #: The approved parameter set the run used (None: the settings alone).
    parameter_set: int | None = None
    report_path: Path | None = None
    details_path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["start"], data["end"] = self.start.isoformat(), self.end.isoformat()
        data["report_path"] = str(self.report_path) if self.report_path else None
        data["details_path"] = str(self.details_path) if self.details_path else None
        return data


@dataclass(frozen=True)
class _PageTotals:
    """What one page added to a run's totals (its verdicts are already stored)."""

    analysed: int
    flagged: int
    no_usd_rate: int
    stored: int
    counts_by_rule: dict[str, int]


def _check_interval(start: datetime, end: datetime, bucket: int, buckets: int) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise FraudAnalysisError(
            "start and end must be timezone-aware (UTC), e.g. 2025-01-31T00:00Z"
        )
    if start >= end:
        raise FraudAnalysisError(
            f"empty interval: start {start.isoformat()} is not before end {end.isoformat()}"
        )
    if buckets < 1 or not 0 <= bucket < buckets:
        raise FraudAnalysisError(f"bucket must be in 0..{buckets - 1} (got {bucket} of {buckets})")


def analyze_interval(
    settings: Settings,
    *,
    start: datetime,
    end: datetime,
    bucket: int = 0,
    buckets: int = 1,
    progress: Progress | None = None,
) -> AnalysisResult:
    """Analyse transactions in [start, end); see the module docstring for every step.

    `progress(done, total)` is called after each page, in units of the user-id range covered.
    Raises `FraudAnalysisError` for a bad interval or bucket.
    """
    _check_interval(start, end, bucket, buckets)
    began = time.monotonic()
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    # the model comes from deployment settings a parameter set never changes (`NOT_TUNABLE`):
    # a missing model file is refused before anything is read
    model = model_of(settings.fraud)
    active = active_parameters(settings)
    params = active.params
    fx = FxRates()
    analysed_at = datetime.now(UTC)  # informational; unchanged rows keep their earlier value
    counts: Counter[str] = Counter({rule_id: 0 for rule_id in RULE_IDS})
    totals: Counter[str] = Counter()

    terminal_since = utc_midnight(start) - timedelta(days=params.terminal_read_days)
    terminal_until = utc_midnight(end) + timedelta(days=1) - timedelta(days=params.label_delay_days)
    wait_for_replica(settings)
    # connections kept for the run (a small pool, one per page thread): a page's transaction
    # no longer pays a TCP handshake, TLS context and login on both ends
    writer = writer_engine(settings, keep_open=True)
    try:
        with ReplicaReader(settings) as replica:
            history = replica_terminal_history(
                replica,
                params,
                since=terminal_since,
                until=terminal_until,
                start=start,
                end=end,
                fx=fx,
            )
            keep = replica.stored_ids(start=start, end=end, bucket=bucket, buckets=buckets)

            def score_and_store(frame: pd.DataFrame) -> _PageTotals:
                verdicts = score_frame(
                    fill_missing_usd(frame, fx),
                    history,
                    params,
                    start=start,
                    end=end,
                    keep_ids=keep,
                    model=model,
                )
                del frame  # the page itself is not needed while its verdicts are written
                # the page threads' upserts may deadlock (ids interleave): run again (db.retry)
                stored = in_transaction(
                    writer,
                    lambda conn: upsert_scores(
                        conn, verdicts.rows, start=start, end=end, analysed_at=analysed_at
                    ),
                )
                return _PageTotals(
                    analysed=verdicts.analysed,
                    flagged=verdicts.flagged,
                    no_usd_rate=verdicts.no_usd_rate,
                    stored=stored,
                    counts_by_rule=verdicts.counts_by_rule,
                )

            pages = replica.pages(
                since=start - timedelta(days=params.lookback_days),
                until=end,
                page_rows=params.page_rows,
                bucket=bucket,
                buckets=buckets,
                progress=progress,
            )
            for page in in_parallel(score_and_store, pages, threads=params.page_threads):
                totals.update(
                    analysed=page.analysed,
                    flagged=page.flagged,
                    no_usd_rate=page.no_usd_rate,
                    stored=page.stored,
                    pages=1,
                )
                counts.update(page.counts_by_rule)
            rows_read = replica.rows_read
    finally:
        writer.dispose()

    paths = merge_reports(settings, start=start, end=end) if buckets == 1 else None
    return AnalysisResult(
        start=start,
        end=end,
        bucket=bucket,
        buckets=buckets,
        analysed=totals["analysed"],
        flagged=totals["flagged"],
        counts_by_rule=dict(counts),
        no_usd_rate=totals["no_usd_rate"],
        stored=totals["stored"],
        rows_read=rows_read,
        pages=totals["pages"],
        seconds=round(time.monotonic() - began, 3),
        parameter_set=active.version,
        report_path=paths.report_path if paths else None,
        details_path=paths.details_path if paths else None,
    )


def merge_reports(settings: Settings, *, start: datetime, end: datetime) -> ReportPaths:
    """Write both reports of [start, end) from `fraud_scores`, read on the replica.

    Waits for the replica to have applied the verdicts first (`wait_for_replica`). Called by `analyze_interval` for an unbucketed run, and once after all buckets otherwise.
    The file date is `start`'s UTC date.
    """
    _check_interval(start, end, 0, 1)
    wait_for_replica(settings)
    with ReplicaReader(settings) as replica:
        rows = replica.report_rows(start=start, end=end)
    report_path, details_path, flagged = write_fraud_reports(
        settings.reports_dir, start.astimezone(UTC).date(), rows
    )
    return ReportPaths(report_path=report_path, details_path=details_path, flagged=flagged)


def model_of(params: FraudParameters) -> FraudModel | None:
    """The model of a run, read once: `LEDGERGUARD_FRAUD__MODEL_PATH` when set, else the
    promoted version of the model store; None (the rules alone) when neither exists.

    The streaming scorer loads it the same way, so stream and nightly score with the same model.
    """
    from ledgerguard.fraud.model_store import promoted

    version = promoted(params.model_store_dir)
    if params.model_path is None and version is None:
        return None
    from ledgerguard.fraud.engine.model import FraudModel, TrainingError

    try:
        if params.model_path is not None:
            return FraudModel.load(params.model_path)
        return FraudModel.from_store(params.model_store_dir, version or "")
    except TrainingError as exc:
        raise FraudAnalysisError(str(exc)) from exc


def day_interval(day: date) -> tuple[datetime, datetime]:
    """[00:00, next 00:00) UTC of `day`: the nightly run's interval."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)
