"""Compliance reports of one business day (the UTC calendar day), read from the replica.

* `ctr_report_<day>.csv` (Currency Transaction Report candidates): users whose USD-equivalent
  volume on the day is strictly above `large_amount_usd`, plus users whose known volume is not
  but who paid in a currency without an ECB rate (Status `REVIEW_NO_USD_RATE`: their volume
  cannot be decided). Header `User ID,Transactions,Total USD,Unconverted Transactions,Status`.
* `structuring_candidates_<day>.csv`: one line per structuring group with at least one payment
  on the day, found by the fraud engine's own definition
  (`ledgerguard.fraud.engine.customer_features.structuring_groups`: near-line payments, USD amount in
  [floor, line], at least `structuring_min_count` of them within `structuring_window_hours`,
  together above the line). The engine's rule flags exactly these payments, so the file and
  the day's `structuring` flags cannot disagree. Header
  `User ID,Transactions,Total USD,First At,Last At`.

The CTR sums are computed by the server in DECIMAL and the structuring sums in exact 10^-4
units, so the 10,000.00 boundary is exact in both. The near-line payments are read over the
same look-back (`lookback_days`) as the nightly analysis, since a group may begin before the day.
Rows without a stored USD amount are not near-line here (the CTR file lists their users as
`REVIEW_NO_USD_RATE`); the engine converts them if an ECB rate has become known since.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from ledgerguard.db.engines import analytics_engine
from ledgerguard.fraud.engine.customer_features import group_units, structuring_groups
from ledgerguard.fraud.engine.windows import TimeAxis
from ledgerguard.fraud.engine.fx import units_to_decimal
from ledgerguard.fraud.reports.fraud_report import write_csv_atomic
from ledgerguard.settings import Settings
from ledgerguard.settings.fraud import FraudParameters
from ledgerguard.utc import as_utc, from_us, iso_z, to_us

CTR_HEADER = ("User ID", "Transactions", "Total USD", "Unconverted Transactions", "Status")
STRUCTURING_HEADER = ("User ID", "Transactions", "Total USD", "First At", "Last At")

_CTR_SQL = sa.text(
    "SELECT user_id, COUNT(*) AS n, COALESCE(SUM(amount_usd), 0) AS total, "
    "SUM(amount_usd IS NULL) AS unconverted FROM transactions "
    "WHERE occurred_at >= :start AND occurred_at < :end GROUP BY user_id "
    "HAVING total > :line OR unconverted > 0 ORDER BY user_id"
)
#: The near-line payments (the only rows a structuring group can hold), in the engine's order.
_NEAR_LINE_SQL = sa.text(
    "SELECT id, user_id, occurred_at, amount_usd FROM transactions "
    "WHERE occurred_at >= :since AND occurred_at < :end "
    "AND amount_usd >= :floor AND amount_usd <= :line ORDER BY user_id, occurred_at, id"
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
            near = conn.execute(
                _NEAR_LINE_SQL,
                {
                    "since": start - timedelta(days=params.lookback_days),
                    "end": end,
                    "floor": params.structuring_floor_usd,
                    "line": line,
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
    structuring_rows = structuring_candidates(near, params, start=start)
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
        structuring_users=len({row[0] for row in structuring_rows}),
    )


def structuring_candidates(
    near: Sequence[Any], params: FraudParameters, *, start: datetime
) -> list[tuple[Any, ...]]:
    """(user, transactions, total USD, first at, last at) of each structuring group with a payment
    at or after `start`; `near` are rows (user_id, occurred_at naive UTC, amount_usd) sorted by
    user, time, id."""
    if not near:
        return []
    user_id = np.array([row.user_id for row in near], dtype=np.int64)
    ts_us = np.array([to_us(as_utc(row.occurred_at, assume_utc=True)) for row in near])
    units = np.array([int(Decimal(row.amount_usd).scaleb(4)) for row in near], dtype=np.int64)
    window_s = params.structuring_window_hours * 3600
    key = TimeAxis(user_id, ts_us, max_window_s=window_s).key
    groups = structuring_groups(key, units, params)
    totals = group_units(groups, units)
    day_start = to_us(as_utc(start, assume_utc=True))
    return [
        (
            int(user_id[first]),
            int(size),
            str(units_to_decimal(total)),
            iso_z(from_us(ts_us[first])),
            iso_z(from_us(ts_us[last])),
        )
        for size, first, last, total in zip(
            groups.size, groups.first, groups.last, totals, strict=True
        )
        if ts_us[last] >= day_start
    ]
