"""CSV reports under `settings.reports_dir`, written atomically (temporary file, then rename).

* `fraud_report_<YYYY-MM-DD>.csv`: exactly the original design's header
  `Transaction ID,User ID,Amount,Currency,Status`, one row per flagged transaction, ordered by
  transaction id, amount with the currency's decimals, Status `FLAGGED_FRAUD`:
  `1,999,15000.00,USD,FLAGGED_FRAUD`.
* `fraud_report_<YYYY-MM-DD>_details.csv`: the same transactions plus the ones whose USD amount
  is unknown (Status `NO_USD_RATE`: the ECB publishes no rate for their currency, so the USD
  rules could not judge them), with time, USD amount, score, rule ids and reasons.

The date is the analysed interval's start date. A reader never sees a half-written file: the
rows go to a temporary file in the same directory, which is flushed, synced and renamed over the
final name (an atomic replace on POSIX file systems).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from ledgerguard.files import write_atomic
from ledgerguard.money import format_amount
from ledgerguard.utc import iso_z

REPORT_HEADER = ("Transaction ID", "User ID", "Amount", "Currency", "Status")
DETAILS_HEADER = (
    "Transaction ID",
    "User ID",
    "Occurred At",
    "Amount",
    "Currency",
    "Amount USD",
    "Score",
    "Status",
    "Rules",
    "Reasons",
)
FLAGGED = "FLAGGED_FRAUD"
NO_USD_RATE = "NO_USD_RATE"


def report_paths(reports_dir: Path, day: date) -> tuple[Path, Path]:
    """(report, details) file names for the interval starting on `day`."""
    stem = f"fraud_report_{day.isoformat()}"
    return reports_dir / f"{stem}.csv", reports_dir / f"{stem}_details.csv"


#: A cell starting with one of these is a formula to a spreadsheet (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula, prefixed with `'` so it shows as text.

    Only strings are touched: numbers (a negative amount is a number, not a formula) and dates
    keep their exact form.
    """
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def write_csv_atomic(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    """Write a CSV file (LF line ends) so that `path` is either the old or the whole new file."""

    def write(out: TextIO) -> None:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([neutralise_cell(cell) for cell in row] for row in rows)

    return write_atomic(path, write, newline="")


def write_fraud_reports(
    reports_dir: Path, day: date, verdicts: Sequence[Any]
) -> tuple[Path, Path, int]:
    """Both reports from verdict rows (`store.report_rows`); returns the paths and flag count.

    Each row has transaction_id, user_id, occurred_at, amount, currency, amount_usd, score,
    flagged, rule_ids, reasons, in transaction id order.
    """
    report_path, details_path = report_paths(reports_dir, day)
    flagged = [row for row in verdicts if row.flagged]
    write_csv_atomic(
        report_path,
        REPORT_HEADER,
        (
            (
                row.transaction_id,
                row.user_id,
                format_amount(row.amount, row.currency),
                row.currency,
                FLAGGED,
            )
            for row in flagged
        ),
    )
    write_csv_atomic(
        details_path,
        DETAILS_HEADER,
        (
            (
                row.transaction_id,
                row.user_id,
                iso_z(row.occurred_at),
                format_amount(row.amount, row.currency),
                row.currency,
                "" if row.amount_usd is None else str(Decimal(row.amount_usd)),
                f"{Decimal(row.score):.4f}",
                FLAGGED if row.flagged else NO_USD_RATE,
                row.rule_ids,
                row.reasons,
            )
            for row in verdicts
        ),
    )
    return report_path, details_path, len(flagged)
