"""Writes of the fraud engine on the primary, as the API account (SELECT/INSERT/UPDATE only).

Every write is an upsert (`INSERT ... ON DUPLICATE KEY UPDATE`), so running the same analysis or
label import twice leaves the tables as they were. The timestamps (`analysed_at`, `labelled_at`)
follow that rule too: they move only when the row's content changes. MariaDB applies the
assignments of ON DUPLICATE KEY UPDATE left to right, each seeing the columns as already updated,
which is why the timestamp is assigned first, while the old values are still there to compare.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects.mysql import pymysql as mysql_pymysql

from ledgerguard.db.fraud_results import UPSERT_LABELS, UPSERT_SCORES
from ledgerguard.fraud.engine.fx import units_to_decimal
from ledgerguard.fraud.engine.scoring import VERDICT_COLUMNS
from ledgerguard.utc import from_us

BATCH_ROWS = 2_000
LOOKUP_IDS = 20_000
LABEL_BATCH_ROWS = 10_000
#: Order of a label row for `upsert_labels`.
LABEL_ROW = ("transaction_id", "external_id", "is_fraud", "labelled_at", "source")


def _batches(rows: list[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    for offset in range(0, len(rows), BATCH_ROWS):
        yield rows[offset : offset + BATCH_ROWS]


def verdict_rows(verdicts: pd.DataFrame, **columns: Any) -> list[dict[str, Any]]:
    """`fraud_scores` rows of verdicts (see `scoring.VERDICT_COLUMNS`) plus the same `columns`.

    Without `interval_start` / `interval_end` among `columns`, each row's interval is its UTC
    day (what the streaming scorer, which has no interval, stores).
    """
    rows = []
    for (
        tx_id,
        user_id,
        ts_us,
        amount_units,
        currency,
        units,
        score,
        flagged,
        rule_ids,
        reasons,
        model_version,
    ) in verdicts[list(VERDICT_COLUMNS)].itertuples(index=False, name=None):
        occurred_at = from_us(ts_us)
        row = {
            "transaction_id": int(tx_id),
            "user_id": int(user_id),
            "occurred_at": occurred_at,
            "amount": units_to_decimal(amount_units),
            "currency": currency,
            "amount_usd": units_to_decimal(units) if units >= 0 else None,
            "score": Decimal(f"{score:.4f}"),
            "flagged": bool(flagged),
            "rule_ids": rule_ids,
            "reasons": reasons,
            # the model store version that scored the row; None (NULL): the rules alone
            "model_version": model_version,
        }
        if "interval_start" not in columns:
            day = occurred_at.replace(hour=0, minute=0, second=0, microsecond=0)
            row["interval_start"], row["interval_end"] = day, day + timedelta(days=1)
        rows.append(row | columns)
    return rows


def upsert_scores(
    conn: sa.Connection,
    verdicts: pd.DataFrame,
    *,
    start: datetime,
    end: datetime,
    analysed_at: datetime,
) -> int:
    """Store verdict rows (see `scoring.VERDICT_COLUMNS`) in the caller's transaction."""
    rows = verdict_rows(
        verdicts, interval_start=start, interval_end=end, analysed_at=analysed_at, source="nightly"
    )
    for batch in _batches(rows):
        conn.execute(UPSERT_SCORES, batch)
    return len(rows)


def transaction_ids_by_external(
    cursor: Any, external_ids: list[str], progress: Callable[[int], None] | None = None
) -> np.ndarray:
    """`transactions.id` of each external id, in the same order; -1 where none is stored.

    A raw DBAPI cursor and IN lists of 20,000 ids: at 13.4M labels the SQLAlchemy rows and a
    dict of every id cost minutes and gigabytes.
    """
    found = np.full(len(external_ids), -1, dtype=np.int64)
    for offset in range(0, len(external_ids), LOOKUP_IDS):
        chunk = external_ids[offset : offset + LOOKUP_IDS]
        marks = ", ".join(["%s"] * len(chunk))
        cursor.execute(
            f"SELECT external_id, id FROM transactions WHERE external_id IN ({marks})", chunk
        )
        ids = dict(cursor.fetchall())
        found[offset : offset + len(chunk)] = [ids.get(external_id, -1) for external_id in chunk]
        if progress is not None:
            progress(offset + len(chunk))
    return found


def upsert_labels(
    cursor: Any, rows: Iterable[tuple[Any, ...]], progress: Callable[[int], None] | None = None
) -> int:
    """Store label rows `(transaction_id, external_id, is_fraud, labelled_at, source)`.

    The statement is `UPSERT_LABELS` compiled once for pymysql, whose `executemany` sends
    multi-row INSERTs; tuples instead of dicts through SQLAlchemy make 13.4M labels minutes
    faster.
    """
    compiled = UPSERT_LABELS.compile(dialect=mysql_pymysql.dialect())
    assert compiled.positiontup == list(LABEL_ROW), compiled.positiontup
    stored = 0
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == LABEL_BATCH_ROWS:
            cursor.executemany(compiled.string, batch)
            stored, batch = stored + len(batch), []
            if progress is not None:
                progress(stored)
    if batch:
        cursor.executemany(compiled.string, batch)
        stored += len(batch)
    if progress is not None:
        progress(stored)
    return stored
