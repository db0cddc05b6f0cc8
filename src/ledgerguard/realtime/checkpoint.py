"""Verdicts and the GTID position, written together: the scorer's exactly-once guarantee.

Each micro-batch is one transaction on the primary (as the API account): the verdicts (upsert by
transaction id, so a replayed batch rewrites the same rows with the same values), the new alerts
of the webhook outbox (insert-if-absent by delivery id), and the partition's checkpoint row.
Every verdict goes to the narrow `realtime_verdicts`; the flagged ones, and those revising a
real-time row already in `fraud_scores` (a flag withdrawn), also to `fraud_scores`, where the
alert queue reads them: the wide row and its four indexes are paid by ~2 % of the verdicts, not
all of them (`ledgerguard bench verdict-writes` measures the servers' CPU of each layout).
Either all of it is committed or none: after a crash (kill -9 included) the scorer resumes from
the checkpoint, re-reads the batch that was cut off, and writes it again, so every committed
transaction ends with exactly one verdict row.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from ledgerguard.db.fraud_results import (
    UPSERT_REALTIME_SCORES,
    UPSERT_REALTIME_VERDICTS,
    select_realtime_flagged,
    select_realtime_scored,
)
from ledgerguard.db.realtime import INSERT_ALERTS, UPSERT_CHECKPOINT, select_checkpoint
from ledgerguard.db.retry import in_transaction
from ledgerguard.db.tables import realtime_verdicts
from ledgerguard.fraud.store import SCORES_COLUMNS, upsert_rows, verdict_rows
from ledgerguard.realtime.stages import StageClock

#: Transaction ids per look-up of stored flagged verdicts (primary-key look-ups).
_IDS_PER_LOOKUP = 5_000
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


def read_flagged(engine: sa.Engine, transaction_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ids and scores (x 10^4) of the flagged real-time verdicts stored for `transaction_ids`,
    read on the primary, where the scorer writes them (a replica may not have the last
    batches yet): what a restarted scorer gave those rows (`OnlineState.recall_flagged`)."""
    found: list[tuple[int, Any]] = []
    ids = transaction_ids.tolist()
    with engine.connect() as conn:
        for first in range(0, len(ids), _IDS_PER_LOOKUP):
            chunk = ids[first : first + _IDS_PER_LOOKUP]
            found += conn.execute(select_realtime_flagged(chunk)).tuples().all()
    return (
        np.array([row[0] for row in found], dtype=np.int64),
        np.array([round(row[1] * 10_000) for row in found], dtype=np.int32),
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
            "scored_at": row["analysed_at"].isoformat(),
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
    replacing: np.ndarray | None = None,
    clock: StageClock | None = None,
) -> int:
    """Write a batch's verdicts (+ alerts) and the checkpoint in one transaction; alerts made.

    `replacing`: the transaction ids among the verdicts that may replace a verdict already
    stored (revisions, replays); an unflagged one of those also rewrites its real-time row of
    `fraud_scores`, if it has one, so no withdrawn flag stays in the alert queue. None: any
    verdict may (every unflagged one is looked up).
    """
    clock = clock or StageClock()
    now = datetime.now(UTC)
    with clock.stage("verdicts"):
        outbox = _batch_alerts(verdicts, alerts, now)
    with clock.stage("write"):
        write_batch(
            engine, verdicts, outbox, partition_name, gtid_pos, event_at, scored, now, replacing
        )
    return len(outbox)


#: The columns the narrow table's statement writes (`verdict_literals` builds only those asked
#: for; `fraud_scores` gets all of its own, `store.SCORES_COLUMNS`).
VERDICTS_COLUMNS = tuple(column.name for column in realtime_verdicts.c)


def _alert_queue_rows(
    conn: sa.Connection, verdicts: pd.DataFrame, replacing: np.ndarray | None
) -> pd.DataFrame:
    """The verdicts that also go to `fraud_scores`: the flagged ones, and unflagged ones
    (among `replacing`, all if None) whose transaction has a real-time row there already (a
    flag withdrawn by a revision, or a row written before migration 0012), so that row is not
    left flagged. A new transaction's unflagged verdict (nearly all of them) costs no lookup."""
    flagged = verdicts["flagged"].to_numpy(dtype=bool)
    ids = verdicts["transaction_id"].to_numpy()
    unflagged = ~flagged if replacing is None else ~flagged & np.isin(ids, replacing)
    keep = flagged
    if unflagged.any():
        held = conn.execute(select_realtime_scored(ids[unflagged].tolist())).scalars().all()
        if held:
            keep = flagged | np.isin(ids, held)
    return verdicts[keep]


def _batch_alerts(verdicts: pd.DataFrame, alerts: bool, now: datetime) -> list[dict[str, Any]]:
    """The outbox rows of the batch's flagged verdicts (none without a webhook)."""
    if not alerts or not len(verdicts):
        return []
    flagged = verdicts[verdicts["flagged"].to_numpy(dtype=bool)]
    rows = verdict_rows(
        flagged,
        analysed_at=now,
        source="realtime",
    )
    return alert_rows(rows, now=now)


def write_batch(
    engine: sa.Engine,
    verdicts: pd.DataFrame,
    outbox: list[dict[str, Any]],
    partition_name: str,
    gtid_pos: str,
    event_at: datetime | None,
    scored: int,
    now: datetime,
    replacing: np.ndarray | None = None,
) -> None:
    """The batch's transaction (see the module docstring and `commit_batch`), run again when
    InnoDB rolls it back over a lock another writer of `fraud_scores` holds (`db.retry`)."""

    def work(conn: sa.Connection) -> None:
        if len(verdicts):
            dbapi_connection = conn.connection.dbapi_connection
            upsert_rows(dbapi_connection, UPSERT_REALTIME_VERDICTS, verdicts, now, VERDICTS_COLUMNS)
            queued = _alert_queue_rows(conn, verdicts, replacing)
            if len(queued):
                upsert_rows(dbapi_connection, UPSERT_REALTIME_SCORES, queued, now, SCORES_COLUMNS)
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

    in_transaction(engine, work)
