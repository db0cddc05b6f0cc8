"""Compliance reports of one business day (the UTC calendar day), read from the replica.

* `ctr_report_<day>.csv` (Currency Transaction Report candidates): users whose USD-equivalent
  volume on the day is strictly above `large_amount_usd`, plus users whose known volume is not
  but who paid in a currency without an ECB rate (Status `REVIEW_NO_USD_RATE`: their volume
  cannot be decided). Header `User ID,Transactions,Total USD,Unconverted Transactions,Status`.
* `structuring_candidates_<day>.csv`: users with at least `structuring_min_count` near-line
  payments (USD amount in [floor, line]) in the `structuring_window_hours` ending at the end of
  the day, at least one of them on the day, together above the line. Header
  `User ID,Transactions,Total USD,First At,Last At`.

Sums are computed by the server in DECIMAL, so the 10,000.00 boundary is exact here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from ledgerguard.fraud.reader import analytics_engine
from ledgerguard.fraud.reports.fraud_report import write_csv_atomic
from ledgerguard.settings import Settings

CTR_HEADER = ("User ID", "Transactions", "Total USD", "Unconverted Transactions", "Status")
STRUCTURING_HEADER = ("User ID", "Transactions", "Total USD", "First At", "Last At")

_CTR_SQL = sa.text(
    "SELECT user_id, COUNT(*) AS n, COALESCE(SUM(amount_usd), 0) AS total, "
    "SUM(amount_usd IS NULL) AS unconverted FROM transactions "
    "WHERE occurred_at >= :start AND occurred_at < :end GROUP BY user_id "
    "HAVING total > :line OR unconverted > 0 ORDER BY user_id"
)
_STRUCTURING_SQL = sa.text(
    "SELECT user_id, COUNT(*) AS n, SUM(amount_usd) AS total, MIN(occurred_at) AS first_at, "
    "MAX(occurred_at) AS last_at FROM transactions "
    "WHERE occurred_at >= :since AND occurred_at < :end "
    "AND amount_usd >= :floor AND amount_usd <= :line GROUP BY user_id "
    "HAVING n >= :min_count AND total > :line AND last_at >= :start ORDER BY user_id"
)


@dataclass(frozen=True)
class ComplianceReport:
    ctr_path: Path
    structuring_path: Path
    ctr_users: int
    structuring_users: int

    @property
    def paths(self) -> tuple[Path, Path]:
        return self.ctr_path, self.structuring_path


def _iso(moment: datetime) -> str:
    return moment.replace(tzinfo=UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def compliance_report(settings: Settings, *, day: date) -> ComplianceReport:
    """Write both compliance files for `day` under `settings.reports_dir`."""
    params = settings.fraud
    start = datetime(day.year, day.month, day.day)
    end = start + timedelta(days=1)
    line = params.large_amount_usd
    engine = analytics_engine(settings)
    try:
        with engine.connect() as conn:
            ctr = conn.execute(_CTR_SQL, {"start": start, "end": end, "line": line}).all()
            structuring = conn.execute(
                _STRUCTURING_SQL,
                {
                    "since": end - timedelta(hours=params.structuring_window_hours),
                    "start": start,
                    "end": end,
                    "floor": params.structuring_floor_usd,
                    "line": line,
                    "min_count": params.structuring_min_count,
                },
            ).all()
    finally:
        engine.dispose()
    ctr_rows = [
        (
            row.user_id,
            row.n,
            str(Decimal(row.total)),
            int(row.unconverted),
            "CTR_REQUIRED" if Decimal(row.total) > line else "REVIEW_NO_USD_RATE",
        )
        for row in ctr
    ]
    structuring_rows = [
        (row.user_id, row.n, str(Decimal(row.total)), _iso(row.first_at), _iso(row.last_at))
        for row in structuring
    ]
    reports_dir = settings.reports_dir
    return ComplianceReport(
        ctr_path=write_csv_atomic(
            reports_dir / f"ctr_report_{day.isoformat()}.csv", CTR_HEADER, ctr_rows
        ),
        structuring_path=write_csv_atomic(
            reports_dir / f"structuring_candidates_{day.isoformat()}.csv",
            STRUCTURING_HEADER,
            structuring_rows,
        ),
        ctr_users=sum(1 for row in ctr_rows if row[4] == "CTR_REQUIRED"),
        structuring_users=len(structuring_rows),
    )
