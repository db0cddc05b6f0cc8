"""The SQL that reads `transactions`, and the validated shape of a row to write.

Functions take keyword-only arguments and an explicit connection, so the caller decides which
server (replica, or the primary as a fallback) serves the read. Writes have one home of their
own, `ledgerguard.db.writer` (group commit); bulk loads are in `ledgerguard.fraud.imports.importer`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ledgerguard.db.tables import transactions


@dataclass(frozen=True)
class NewTransaction:
    """A validated transaction ready to be stored (money as Decimal, times timezone-aware UTC)."""

    user_id: int
    amount: Decimal
    currency: str
    occurred_at: datetime
    created_at: datetime
    amount_usd: Decimal | None = None
    external_id: str | None = None
    terminal_id: int | None = None
    merchant_id: int | None = None
    status: str = "ACCEPTED"

    def values(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "amount": self.amount,
            "currency": self.currency,
            "amount_usd": self.amount_usd,
            "occurred_at": self.occurred_at,
            "created_at": self.created_at,
            "external_id": self.external_id,
            "terminal_id": self.terminal_id,
            "merchant_id": self.merchant_id,
            "status": self.status,
        }


def _by_id(transaction_id: int) -> sa.Select[Any]:
    return sa.select(transactions).where(transactions.c.id == transaction_id)


async def get_transaction(conn: AsyncConnection, *, transaction_id: int) -> sa.Row[Any] | None:
    """One row by id, or None."""
    result = await conn.execute(_by_id(transaction_id))
    return result.first()


def get_transaction_sync(conn: sa.Connection, *, transaction_id: int) -> sa.Row[Any] | None:
    """`get_transaction` for sync callers (the web app's `run_sync` work)."""
    return conn.execute(_by_id(transaction_id)).first()


async def list_transactions(
    conn: AsyncConnection,
    *,
    user_id: int | None,
    since: datetime | None,
    until: datetime | None,
    after_id: int | None,
    limit: int,
    merchant_id: int | None = None,
) -> list[sa.Row[Any]]:
    """A keyset page ordered by id: rows with id > `after_id` matching the filters.

    Keyset (not OFFSET) pagination keeps every page an index range scan however deep the client
    pages, and stays stable while new rows arrive (they get larger ids).
    """
    query = sa.select(transactions).order_by(transactions.c.id).limit(limit)
    if user_id is not None:
        query = query.where(transactions.c.user_id == user_id)
    if merchant_id is not None:
        query = query.where(transactions.c.merchant_id == merchant_id)
    if since is not None:
        query = query.where(transactions.c.occurred_at >= since)
    if until is not None:
        query = query.where(transactions.c.occurred_at < until)
    if after_id is not None:
        query = query.where(transactions.c.id > after_id)
    return list((await conn.execute(query)).all())
