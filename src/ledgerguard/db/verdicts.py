"""Reads of fraud verdicts for the API: the risk of one transaction, the alerts page.

Both read `fraud_scores`, whichever scorer wrote the row (`source`): the streaming scorer a
second after the commit, the nightly run later (it wins: see `fraud_results`). The streaming
scorer keeps only its flagged verdicts there; a transaction without a `fraud_scores` row has its
risk in `realtime_verdicts` (migration 0012).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ledgerguard.db.tables import fraud_scores, realtime_verdicts, transactions

#: Values of `fraud_scores.source`: which scorer wrote the verdict a row holds.
SCORE_SOURCES = ("realtime", "nightly")

_RISK_COLUMNS = (
    fraud_scores.c.transaction_id,
    fraud_scores.c.score,
    fraud_scores.c.flagged,
    fraud_scores.c.rule_ids,
    fraud_scores.c.reasons,
    fraud_scores.c.analysed_at,
    fraud_scores.c.source,
)


#: A `realtime_verdicts` row in the shape of `_RISK_COLUMNS`.
_REALTIME_RISK_COLUMNS = (
    realtime_verdicts.c.transaction_id,
    realtime_verdicts.c.score,
    realtime_verdicts.c.flagged,
    realtime_verdicts.c.rule_ids,
    realtime_verdicts.c.reasons,
    realtime_verdicts.c.scored_at.label("analysed_at"),
    sa.literal("realtime", sa.String(8)).label("source"),
)


async def get_risk(conn: AsyncConnection, *, transaction_id: int) -> sa.Row[Any] | None:
    """The verdict of one transaction, None before it is scored: its `fraud_scores` row (the
    nightly run's, or a flagged real-time one) if there is one, else its unflagged real-time
    verdict. One round trip: both primary-key look-ups in one statement, the `fraud_scores` row
    first (most transactions have only the real-time verdict, so two queries cost two trips)."""
    held = sa.select(*_RISK_COLUMNS, sa.literal(0).label("preference")).where(
        fraud_scores.c.transaction_id == transaction_id
    )
    streamed = sa.select(*_REALTIME_RISK_COLUMNS, sa.literal(1).label("preference")).where(
        realtime_verdicts.c.transaction_id == transaction_id
    )
    query = sa.union_all(held, streamed).order_by(sa.literal_column("preference")).limit(1)
    return (await conn.execute(query)).first()


async def list_alerts(
    conn: AsyncConnection,
    *,
    before_id: int | None,
    rule: str | None,
    limit: int,
    source: str | None = None,
    merchant_id: int | None = None,
) -> list[sa.Row[Any]]:
    """Flagged verdicts, newest (largest transaction id) first, keyset-paged by id; only
    those whose verdict comes from `source` (one of `SCORE_SOURCES`) when given, and only
    `merchant_id`'s transactions when it is given (the verdict does not copy the merchant)."""
    query = (
        sa.select(
            *_RISK_COLUMNS,
            fraud_scores.c.user_id,
            fraud_scores.c.occurred_at,
            fraud_scores.c.amount,
            fraud_scores.c.currency,
            fraud_scores.c.amount_usd,
        )
        .where(fraud_scores.c.flagged.is_(True))
        .order_by(fraud_scores.c.transaction_id.desc())
        .limit(limit)
    )
    if before_id is not None:
        query = query.where(fraud_scores.c.transaction_id < before_id)
    if rule is not None:
        query = query.where(sa.func.find_in_set(rule, fraud_scores.c.rule_ids) > 0)
    if source is not None:
        query = query.where(fraud_scores.c.source == source)
    if merchant_id is not None:
        query = query.join(transactions, transactions.c.id == fraud_scores.c.transaction_id).where(
            transactions.c.merchant_id == merchant_id
        )
    return list((await conn.execute(query)).all())
