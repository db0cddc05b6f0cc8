"""Verdicts and the GTID position, written together: the scorer's exactly-once guarantee.

Each micro-batch is one transaction on the primary (as the API account): the verdicts (upsert by
transaction id, so a replayed batch rewrites the same rows with the same values), the new alerts
of the webhook outbox (insert-if-absent by delivery id), and the partition's checkpoint row.
Either all of it is committed or none: after a crash (kill -9 included) the scorer resumes from
the checkpoint, re-reads the batch that was cut off, and writes it again, so every committed
transaction ends with exactly one verdict row.
"""

from __future__ import annotations

import functools
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from pymysql.cursors import RE_INSERT_VALUES
from sqlalchemy.dialects.mysql import pymysql as mysql_pymysql

from ledgerguard.db.fraud_results import UPSERT_REALTIME_SCORES
from ledgerguard.db.realtime import INSERT_ALERTS, UPSERT_CHECKPOINT, select_checkpoint
from ledgerguard.fraud.engine.features import SECONDS_PER_DAY, US_PER_SECOND
from ledgerguard.fraud.store import verdict_rows
from ledgerguard.realtime.stages import StageClock
from ledgerguard.utc import utc_naive

#: Verdict rows per upsert statement (~1 KiB each: far below `max_allowed_packet`).
_ROWS_PER_STATEMENT = 1_000
#: Namespace of the alert delivery ids: the id of a transaction's alert is always the same.
_DELIVERY_NAMESPACE = uuid.UUID("6f1c2a7e-3b7d-4d0e-9a55-1e0c4b8f2d10")


@dataclass(frozen=True)
class Checkpoint:
    partition_name: str
    gtid_pos: str
    event_at: datetime | None
    transactions_scored: int
    updated_at: datetime


def read_checkpoint(engine: sa.Engine, partition_name: str) -> Checkpoint | None:
    """The partition's checkpoint on the primary (None: the scorer never ran)."""
    with engine.connect() as conn:
        row = conn.execute(select_checkpoint(partition_name)).first()
    if row is None:
        return None
    return Checkpoint(
        partition_name=row.partition_name,
        gtid_pos=row.gtid_pos,
        event_at=row.event_at,
        transactions_scored=row.transactions_scored,
        updated_at=row.updated_at,
    )


def delivery_id(transaction_id: int) -> str:
    """The alert's delivery id: stable, so a replayed batch never makes a second alert."""
    return str(uuid.uuid5(_DELIVERY_NAMESPACE, f"alert:{transaction_id}"))


def alert_rows(rows: list[dict[str, Any]], *, now: datetime) -> list[dict[str, Any]]:
    """Outbox rows of the flagged verdicts among `rows` (`verdict_rows` dicts)."""
    alerts = []
    for row in rows:
        if not row["flagged"]:
            continue
        identifier = delivery_id(row["transaction_id"])
        payload = {
            "delivery_id": identifier,
            "transaction_id": row["transaction_id"],
            "user_id": row["user_id"],
            "occurred_at": row["occurred_at"].isoformat(),
            "amount": str(row["amount"]),
            "currency": row["currency"],
            "amount_usd": None if row["amount_usd"] is None else str(row["amount_usd"]),
            "score": str(row["score"]),
            "rule_ids": [rule for rule in row["rule_ids"].split(",") if rule],
            "reasons": row["reasons"],
            "scored_at": row["realtime_scored_at"].isoformat(),
            "source": "realtime",
        }
        alerts.append(
            {
                "delivery_id": identifier,
                "transaction_id": row["transaction_id"],
                "payload": json.dumps(payload, separators=(",", ":")),
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "last_error": "",
                "created_at": now,
            }
        )
    return alerts


def commit_batch(
    engine: sa.Engine,
    *,
    verdicts: pd.DataFrame,
    partition_name: str,
    gtid_pos: str,
    event_at: datetime | None,
    scored: int,
    alerts: bool,
    clock: StageClock | None = None,
) -> int:
    """Write a batch's verdicts (+ alerts) and the checkpoint in one transaction; alerts made."""
    clock = clock or StageClock()
    now = datetime.now(UTC)
    with clock.stage("verdicts"):
        outbox = _batch_alerts(verdicts, alerts, now)
    with clock.stage("write"):
        _write_batch(engine, verdicts, outbox, partition_name, gtid_pos, event_at, scored, now)
    return len(outbox)


@functools.cache
def _compiled_upsert(keys: tuple[str, ...]) -> tuple[str, str, tuple[str, ...]]:
    """`UPSERT_REALTIME_SCORES` compiled once for pymysql: the text before and after its
    VALUES row, and the order of a row's values."""
    compiled = UPSERT_REALTIME_SCORES.compile(
        dialect=mysql_pymysql.dialect(), column_keys=list(keys)
    )
    match = RE_INSERT_VALUES.match(compiled.string)
    if match is None:  # pragma: no cover - the statement is ours
        raise ValueError("UPSERT_REALTIME_SCORES is not a single-row INSERT ... VALUES")
    return match.group(1), match.group(3), tuple(compiled.positiontup or ())


_US_PER_DAY = SECONDS_PER_DAY * US_PER_SECOND
#: Columns of a real-time verdict row that hold the batch's write time.
_WRITE_TIME_COLUMNS = (
    "analysed_at",
    "realtime_scored_at",
    "realtime_first_scored_at",
)


def verdict_literals(verdicts: pd.DataFrame, now: datetime, literal: Any) -> dict[str, list[str]]:
    """Each column of the verdicts' `fraud_scores` rows as SQL literals, built column by column.

    The values `verdict_rows` gives (`source="realtime"`, the batch time in the three time
    columns, the `realtime_*` copies of the verdict), turned into literals from the frame's
    arrays: per row and column, a Python dict and a Decimal or datetime object cost more than
    scoring the row. Datetimes are written as the naive UTC text `UTCDateTime` binds, amounts
    from their 10^-4 units, `literal` (the connection's `escape`) quotes strings.
    """
    ts_us = verdicts["ts_us"].to_numpy(dtype=np.int64)
    occurred = _datetime_literals(ts_us)
    day_us = ts_us - ts_us % _US_PER_DAY
    starts = _datetime_literals(day_us)
    ends = _datetime_literals(day_us + _US_PER_DAY)
    usd = verdicts["usd_units"].to_numpy(dtype=np.int64)
    scores = list(map("{:.4f}".format, verdicts["score"].to_numpy(dtype=float).tolist()))
    flagged = ["1" if flag else "0" for flag in verdicts["flagged"].to_numpy(dtype=bool).tolist()]
    texts: dict[Any, str] = {}

    def strings(values: list[Any]) -> list[str]:
        # a batch repeats most of them ("USD", "", the same rule ids): each distinct value is
        # quoted once, None (or pandas' missing value) is NULL
        for value in dict.fromkeys(values):
            if value not in texts:
                texts[value] = literal(value) if isinstance(value, str) else "NULL"
        return list(map(texts.__getitem__, values))

    rule_ids = strings(verdicts["rule_ids"].tolist())
    stamp = "'" + utc_naive(now).isoformat(" ") + "'"
    n = len(verdicts)
    columns = {
        "transaction_id": list(map(str, verdicts["transaction_id"].to_numpy().tolist())),
        "user_id": list(map(str, verdicts["user_id"].to_numpy().tolist())),
        "occurred_at": occurred,
        "amount": _units_literals(verdicts["amount_units"].to_numpy(dtype=np.int64)),
        "currency": strings(verdicts["currency"].tolist()),
        "amount_usd": [
            text if known else "NULL"
            for text, known in zip(_units_literals(usd), (usd >= 0).tolist(), strict=True)
        ],
        "score": scores,
        "flagged": flagged,
        "rule_ids": rule_ids,
        "reasons": strings(verdicts["reasons"].tolist()),
        "model_version": strings(verdicts["model_version"].tolist()),
        "interval_start": starts,
        "interval_end": ends,
        "source": [literal("realtime")] * n,
        "realtime_score": scores,
        "realtime_flagged": flagged,
        "realtime_rule_ids": rule_ids,
    }
    columns |= {name: [stamp] * n for name in _WRITE_TIME_COLUMNS}
    return columns


def _datetime_literals(ts_us: np.ndarray) -> list[str]:
    """Quoted naive UTC `YYYY-MM-DD HH:MM:SS.ffffff` of microseconds since the epoch (each
    string edit made once on the column joined, not per value)."""
    text = np.datetime_as_string(ts_us.astype("datetime64[us]"), unit="us").tolist()
    return _quoted("\0".join(text).replace("T", " "), len(text))


def _quoted(joined: str, count: int) -> list[str]:
    """`count` NUL-separated values, each in single quotes (values without quotes or NULs)."""
    if not count:
        return []
    return ("'" + joined.replace("\0", "'\0'") + "'").split("\0")


def _units_literals(units: np.ndarray) -> list[str]:
    """10^-4 units as DECIMAL literals with 4 places (`units_to_decimal`'s value)."""
    magnitude = np.abs(units)
    texts = list(
        map("{}.{:04d}".format, (magnitude // 10_000).tolist(), (magnitude % 10_000).tolist())
    )
    if (units < 0).any():
        texts = [
            "-" + text if value < 0 else text
            for text, value in zip(texts, units.tolist(), strict=True)
        ]
    return texts


def _upsert_rows(dbapi_connection: Any, verdicts: pd.DataFrame, now: datetime) -> None:
    """The verdict rows as multi-row upserts, their values written as SQL literals here
    (`verdict_literals`): what pymysql's `executemany` does, without its four Python calls per
    value, nor a dict per row."""
    columns = verdict_literals(verdicts, now, dbapi_connection.escape)
    prefix, postfix, order = _compiled_upsert(tuple(sorted(columns)))
    rows = [
        "(" + ",".join(values) + ")"
        for values in zip(*(columns[key] for key in order), strict=True)
    ]
    with dbapi_connection.cursor() as cursor:
        for first in range(0, len(rows), _ROWS_PER_STATEMENT):
            cursor.execute(prefix + ",".join(rows[first : first + _ROWS_PER_STATEMENT]) + postfix)


def _batch_alerts(verdicts: pd.DataFrame, alerts: bool, now: datetime) -> list[dict[str, Any]]:
    """The outbox rows of the batch's flagged verdicts (none without a webhook)."""
    if not alerts or not len(verdicts):
        return []
    flagged = verdicts[verdicts["flagged"].to_numpy(dtype=bool)]
    rows = verdict_rows(
        flagged,
        analysed_at=now,
        source="realtime",
        realtime_scored_at=now,
        realtime_first_scored_at=now,
    )
    return alert_rows(rows, now=now)


def _write_batch(
    engine: sa.Engine,
    verdicts: pd.DataFrame,
    outbox: list[dict[str, Any]],
    partition_name: str,
    gtid_pos: str,
    event_at: datetime | None,
    scored: int,
    now: datetime,
) -> None:
    with engine.begin() as conn:
        if len(verdicts):
            _upsert_rows(conn.connection.dbapi_connection, verdicts, now)
        if outbox:
            conn.execute(INSERT_ALERTS, outbox)
        conn.execute(
            UPSERT_CHECKPOINT,
            {
                "partition_name": partition_name,
                "gtid_pos": gtid_pos,
                "event_at": event_at,
                "transactions_scored": scored,
                "updated_at": now,
            },
        )
