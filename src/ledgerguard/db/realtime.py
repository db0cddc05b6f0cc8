"""The streaming scorer's own tables: its checkpoint and the webhook outbox, in one place.

`ledgerguard.realtime` writes both on the primary as the API account, in the same transaction
as the verdicts (`UPSERT_REALTIME_SCORES` in `fraud_results`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.mysql import insert

from ledgerguard.db.tables import alert_deliveries, scorer_checkpoints

_checkpoint = insert(scorer_checkpoints)
#: The position a partition has scored up to (one row per partition, replaced each batch).
UPSERT_CHECKPOINT = _checkpoint.on_duplicate_key_update(
    gtid_pos=_checkpoint.inserted.gtid_pos,
    event_at=_checkpoint.inserted.event_at,
    transactions_scored=scorer_checkpoints.c.transactions_scored
    + _checkpoint.inserted.transactions_scored,
    updated_at=_checkpoint.inserted.updated_at,
)
#: A new alert in the outbox; a delivery id already there (a replayed batch) is left alone.
INSERT_ALERTS = insert(alert_deliveries).prefix_with("IGNORE")


def select_checkpoint(partition_name: str) -> sa.Select[Any]:
    return sa.select(scorer_checkpoints).where(
        scorer_checkpoints.c.partition_name == partition_name
    )


def delete_checkpoint(partition_name: str) -> sa.Delete:
    """Remove a checkpoint row (`bench scorer-cpu` cleans up its own)."""
    return sa.delete(scorer_checkpoints).where(
        scorer_checkpoints.c.partition_name == partition_name
    )


def select_checkpoints() -> sa.Select[Any]:
    return sa.select(scorer_checkpoints).order_by(scorer_checkpoints.c.partition_name)


def select_due_alerts(now: datetime, limit: int) -> sa.Select[Any]:
    """Pending deliveries whose next attempt is due, oldest first."""
    return (
        sa.select(alert_deliveries)
        .where(alert_deliveries.c.status == "pending", alert_deliveries.c.next_attempt_at <= now)
        .order_by(alert_deliveries.c.next_attempt_at)
        .limit(limit)
    )


def mark_delivery(delivery_id: str, **values: Any) -> sa.Update:
    """Record the outcome of one attempt (status, attempts, next attempt, error)."""
    return (
        sa.update(alert_deliveries)
        .where(alert_deliveries.c.delivery_id == delivery_id)
        .values(**values)
    )


def requeue_dead(now: datetime) -> sa.Update:
    """Dead letters back to pending, due now, with a fresh retry budget."""
    return (
        sa.update(alert_deliveries)
        .where(alert_deliveries.c.status == "dead")
        .values(status="pending", attempts=0, next_attempt_at=now)
    )


def count_dead() -> sa.Select[Any]:
    """Dead letters: a range of the (status, next_attempt_at) index, not a scan of the outbox."""
    return sa.select(sa.func.count()).where(alert_deliveries.c.status == "dead")
