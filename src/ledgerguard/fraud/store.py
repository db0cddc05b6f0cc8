"""Writes of the fraud engine on the primary, as the API account (SELECT/INSERT/UPDATE only).

Every write is an upsert (`INSERT ... ON DUPLICATE KEY UPDATE`), so running the same analysis or
label import twice leaves the tables as they were. The timestamps (`analysed_at`, `labelled_at`)
follow that rule too: they move only when the row's content changes. MariaDB applies the
assignments of ON DUPLICATE KEY UPDATE left to right, each seeing the columns as already updated,
which is why the timestamp is assigned first, while the old values are still there to compare.

Verdict rows, the nightly run's and the streaming scorer's (`realtime.checkpoint`) alike, go
through `upsert_rows`, labels through `upsert_labels`: their values rendered as SQL literals
column by column (`verdict_columns`), joined into multi-row statements, instead of the driver's
`executemany` (four Python calls per value).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from pymysql.cursors import RE_INSERT_VALUES
from sqlalchemy.dialects.mysql import pymysql as mysql_pymysql

from ledgerguard.db.fraud_results import UPSERT_LABELS, UPSERT_SCORES
from ledgerguard.db.tables import fraud_scores
from ledgerguard.fraud.verdict_columns import datetime_literals, verdict_literals, verdict_values

#: Verdict rows per upsert statement (~1 KiB each: far below `max_allowed_packet`).
ROWS_PER_STATEMENT = 1_000
#: Every column of `fraud_scores`: what the nightly run writes, and the real-time scorer for
#: the verdicts the alert queue reads.
SCORES_COLUMNS = tuple(column.name for column in fraud_scores.c)
LOOKUP_IDS = 20_000
LABEL_BATCH_ROWS = 10_000


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


@functools.cache
def _compiled_upsert(statement: Any, keys: tuple[str, ...]) -> tuple[str, str, tuple[str, ...]]:
    """An upsert compiled once for pymysql: the text before and after its VALUES row, and the
    order of a row's values."""
    compiled = statement.compile(dialect=mysql_pymysql.dialect(), column_keys=list(keys))
    match = RE_INSERT_VALUES.match(compiled.string)
    if match is None:  # pragma: no cover - the statements are ours
        raise ValueError("the upsert is not a single-row INSERT ... VALUES")
    return match.group(1), match.group(3), tuple(compiled.positiontup or ())


def _execute_literals(
    cursor: Any, statement: Any, columns: dict[str, list[str]], rows_per_statement: int
) -> int:
    """`statement` for the rows whose values `columns` holds as SQL literals (column name ->
    one literal per row), `rows_per_statement` rows a multi-row statement; the rows written."""
    prefix, postfix, order = _compiled_upsert(statement, tuple(sorted(columns)))
    rows = [
        "(" + ",".join(values) + ")"
        for values in zip(*(columns[key] for key in order), strict=True)
    ]
    for first in range(0, len(rows), rows_per_statement):
        cursor.execute(prefix + ",".join(rows[first : first + rows_per_statement]) + postfix)
    return len(rows)


def upsert_rows(
    dbapi_connection: Any,
    statement: Any,
    verdicts: pd.DataFrame,
    now: datetime,
    names: tuple[str, ...],
    *,
    source: str = "realtime",
    interval: tuple[datetime, datetime] | None = None,
) -> None:
    """The verdict rows as multi-row upserts of `statement` (its `names` columns), their values
    written as SQL literals (`verdict_columns.verdict_literals`, with `source`, `interval` and
    the write time `now`): what pymysql's `executemany` does, without its four Python calls per
    value, nor a tuple or dict per row."""
    columns = verdict_literals(
        verdicts, now, dbapi_connection.escape, names, source=source, interval=interval
    )
    with dbapi_connection.cursor() as cursor:
        _execute_literals(cursor, statement, columns, ROWS_PER_STATEMENT)


def upsert_scores(
    conn: sa.Connection,
    verdicts: pd.DataFrame,
    *,
    start: datetime,
    end: datetime,
    analysed_at: datetime,
) -> int:
    """Store the nightly run's verdict rows (see `scoring.VERDICT_COLUMNS`) of the interval
    `[start, end)` in the caller's transaction, as `upsert_rows` writes them (`source`
    `nightly`, written at `analysed_at`).

    At 0.01 `store_min_score` a 13.4M-row night writes ~720k rows: rendered column by column as
    literals, their Python cost is about a sixth of the driver's tuples (session 18).
    """
    if len(verdicts) == 0:
        return 0
    upsert_rows(
        conn.connection.dbapi_connection,
        UPSERT_SCORES,
        verdicts,
        analysed_at,
        SCORES_COLUMNS,
        source="nightly",
        interval=(start, end),
    )
    return len(verdicts)


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


@dataclass(frozen=True)
class LabelColumns:
    """Label rows column by column, as `upsert_labels` stores them."""

    transaction_id: np.ndarray  # int64
    external_id: list[str]
    is_fraud: np.ndarray  # bool
    #: when the label became known, microseconds since the epoch (UTC)
    labelled_at_us: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.external_id)


def upsert_labels(
    cursor: Any, labels: LabelColumns, progress: Callable[[int], None] | None = None
) -> int:
    """Store the labels in the cursor's transaction: `UPSERT_LABELS`, `LABEL_BATCH_ROWS` rows
    a statement.

    The values are rendered as SQL literals a column at a time, as verdicts are (ids and flags
    as numbers, the times by NumPy, each external id quoted by the connection, the source once):
    the driver's `executemany` spent four Python calls per value, and with the times formatted
    one by one that was most of the client's time at 1M labels (session 18).
    """
    escape = cursor.connection.escape
    source = escape(labels.source)
    stored = 0
    # rendered a statement's worth at a time: 13.4M labels' literals at once would be gigabytes
    for offset in range(0, len(labels), LABEL_BATCH_ROWS):
        part = slice(offset, offset + LABEL_BATCH_ROWS)
        ids = labels.transaction_id[part].tolist()
        columns = {
            "transaction_id": list(map(str, ids)),
            "external_id": list(map(escape, labels.external_id[part])),
            "is_fraud": ["1" if flag else "0" for flag in labels.is_fraud[part].tolist()],
            "labelled_at": datetime_literals(labels.labelled_at_us[part]),
            "source": [source] * len(ids),
        }
        stored += _execute_literals(cursor, UPSERT_LABELS, columns, LABEL_BATCH_ROWS)
        if progress is not None:
            progress(stored)
    if progress is not None and not stored:
        progress(0)
    return stored
