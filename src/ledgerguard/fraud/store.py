"""Writes of the fraud engine on the primary, as the API account (SELECT/INSERT/UPDATE only).

Every write is an upsert (`INSERT ... ON DUPLICATE KEY UPDATE`), so running the same analysis or
label import twice leaves the tables as they were. The timestamps (`analysed_at`, `labelled_at`)
follow that rule too: they move only when the row's content changes. MariaDB applies the
assignments of ON DUPLICATE KEY UPDATE left to right, each seeing the columns as already updated,
which is why the timestamp is assigned first, while the old values are still there to compare.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects.mysql import pymysql as mysql_pymysql

from ledgerguard.db.fraud_results import UPSERT_LABELS, UPSERT_SCORES
from ledgerguard.fraud.verdict_columns import verdict_params, verdict_values
from ledgerguard.utc import utc_naive

BATCH_ROWS = 2_000
LOOKUP_IDS = 20_000
LABEL_BATCH_ROWS = 10_000
#: Order of a label row for `upsert_labels`.
LABEL_ROW = ("transaction_id", "external_id", "is_fraud", "labelled_at", "source")


def _batches(rows: list[Any]) -> Iterable[list[Any]]:
    for offset in range(0, len(rows), BATCH_ROWS):
        yield rows[offset : offset + BATCH_ROWS]


def _positional(statement: Any, columns: Iterable[str]) -> tuple[str, tuple[str, ...]]:
    """`statement` compiled once for pymysql with `columns` bound: its text and the order of
    its `%s` parameters. pymysql's `executemany` turns it into multi-row INSERTs."""
    compiled = statement.compile(dialect=mysql_pymysql.dialect(), column_keys=list(columns))
    return compiled.string, tuple(compiled.positiontup or ())


def verdict_rows(verdicts: pd.DataFrame, **columns: Any) -> list[dict[str, Any]]:
    """`fraud_scores` rows of verdicts (see `scoring.VERDICT_COLUMNS`) plus the same `columns`,
    their values as `verdict_columns.verdict_values` renders them.

    Without `interval_start` / `interval_end` among `columns`, each row's interval is its UTC
    day (what the streaming scorer, which has no interval, stores).
    """
    values = verdict_values(verdicts, day_interval="interval_start" not in columns)
    return [
        dict(zip(values, row_values, strict=True)) | columns
        for row_values in zip(*values.values(), strict=True)
    ]


def nightly_params(
    verdicts: pd.DataFrame, *, start: datetime, end: datetime, analysed_at: datetime
) -> dict[str, list[Any]]:
    """The driver's parameters of the nightly run's `fraud_scores` rows, column by column: the
    verdicts' own (`verdict_columns.verdict_params`) and the run's interval, time and source,
    bound as `UTCDateTime` binds them (naive UTC)."""
    n = len(verdicts)
    return verdict_params(verdicts) | {
        "interval_start": [utc_naive(start)] * n,
        "interval_end": [utc_naive(end)] * n,
        "analysed_at": [utc_naive(analysed_at)] * n,
        "source": ["nightly"] * n,
    }


def upsert_scores(
    conn: sa.Connection,
    verdicts: pd.DataFrame,
    *,
    start: datetime,
    end: datetime,
    analysed_at: datetime,
) -> int:
    """Store verdict rows (see `scoring.VERDICT_COLUMNS`) in the caller's transaction, their
    values as `nightly_params` renders them.

    The rows go as tuples through the driver's `executemany` (multi-row INSERTs of
    `BATCH_ROWS`), `UPSERT_SCORES` compiled once per call for the columns written: the
    statement SQLAlchemy sends for the same rows as dicts, without its per-value processing
    (about half of a nightly page's write cost in Python).
    """
    if len(verdicts) == 0:
        return 0
    values = nightly_params(verdicts, start=start, end=end, analysed_at=analysed_at)
    sql, order = _positional(UPSERT_SCORES, values)
    rows = list(zip(*(values[name] for name in order), strict=True))
    with conn.connection.dbapi_connection.cursor() as cursor:
        for batch in _batches(rows):
            cursor.executemany(sql, batch)
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
    sql, order = _positional(UPSERT_LABELS, LABEL_ROW)
    assert order == LABEL_ROW, order
    stored = 0
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == LABEL_BATCH_ROWS:
            cursor.executemany(sql, batch)
            stored, batch = stored + len(batch), []
            if progress is not None:
                progress(stored)
    if batch:
        cursor.executemany(sql, batch)
        stored += len(batch)
    if progress is not None:
        progress(stored)
    return stored
