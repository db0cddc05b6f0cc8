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
from decimal import Decimal
from typing import Any

import pandas as pd
import sqlalchemy as sa
from pymysql.cursors import RE_INSERT_VALUES
from sqlalchemy.dialects.mysql import pymysql as mysql_pymysql

from ledgerguard.db.fraud_results import UPSERT_REALTIME_SCORES
from ledgerguard.db.realtime import INSERT_ALERTS, UPSERT_CHECKPOINT, select_checkpoint
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
        rows, outbox = _batch_rows(verdicts, alerts, now)
    with clock.stage("write"):
        _write_batch(engine, rows, outbox, partition_name, gtid_pos, event_at, scored, now)
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


def _upsert_rows(dbapi_connection: Any, rows: list[dict[str, Any]]) -> None:
    """The verdict rows as multi-row upserts, their values written as SQL literals here.

    What pymysql's `executemany` does, without its four Python calls per value (half of the
    scorer's write cost): the few types a verdict row holds are turned into literals
    directly; strings and anything else go through the driver's own `escape`. Datetimes are
    bound as `UTCDateTime` binds them: naive UTC.
    """
    prefix, postfix, order = _compiled_upsert(tuple(rows[0]))
    # strings: quoted and escaped for the session's SQL mode (what `executemany` calls)
    literal = dbapi_connection.escape
    # a batch repeats most datetimes and strings (its time in four columns, the day's interval,
    # "USD", "realtime", the same rule ids): each is turned into a literal once
    seen: dict[Any, str] = {}

    def sql(value: Any) -> str:
        kind = type(value)
        if value is None:
            return "NULL"
        if kind is int:
            return str(value)
        if kind is bool:
            return "1" if value else "0"
        if kind is Decimal:
            return format(value, "f")
        known = seen.get(value)
        if known is not None:
            return known
        if kind is datetime:
            naive = value.replace(tzinfo=None) if value.tzinfo is UTC else utc_naive(value)
            text = "'" + naive.isoformat(" ") + "'"
        else:
            text = literal(value)
        seen[value] = text
        return text

    with dbapi_connection.cursor() as cursor:
        for first in range(0, len(rows), _ROWS_PER_STATEMENT):
            values = ",".join(
                "(" + ",".join([sql(row[key]) for key in order]) + ")"
                for row in rows[first : first + _ROWS_PER_STATEMENT]
            )
            cursor.execute(prefix + values + postfix)


def _batch_rows(
    verdicts: pd.DataFrame, alerts: bool, now: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows = (
        verdict_rows(
            verdicts,
            analysed_at=now,
            source="realtime",
            realtime_scored_at=now,
            realtime_first_scored_at=now,
        )
        if len(verdicts)
        else []
    )
    for row in rows:
        row["realtime_score"] = row["score"]
        row["realtime_flagged"] = row["flagged"]
        row["realtime_rule_ids"] = row["rule_ids"]
    outbox = alert_rows(rows, now=now) if alerts else []
    return rows, outbox


def _write_batch(
    engine: sa.Engine,
    rows: list[dict[str, Any]],
    outbox: list[dict[str, Any]],
    partition_name: str,
    gtid_pos: str,
    event_at: datetime | None,
    scored: int,
    now: datetime,
) -> None:
    with engine.begin() as conn:
        if rows:
            _upsert_rows(conn.connection.dbapi_connection, rows)
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
