"""SQL of the alert queue: pages of flagged verdicts with their cases, one alert, its context.

An alert is a flagged row of `fraud_scores` (nightly or real-time); its review is the row of
`review_cases` with the same `transaction_id`, absent while nobody has touched it (its status
then reads as open). Pages are keyset pages over `ix_fraud_scores_flagged_score` /
`ix_fraud_scores_flagged_time`, so page 1000 costs what page 1 costs. Reads only: the web app
runs them on the replica, except `get_alert(lock=True)`, which `ledgerguard.db.cases` uses on
the primary to lock a case before changing it. Functions take a sync `Connection` (the web app
calls them through `run_sync`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import sqlalchemy as sa

from ledgerguard.db.tables import fraud_labels, fraud_scores, review_cases, transactions

Order = Literal["score", "newest"]
#: Queue filter -> stored statuses (an absent review row counts as open).
STATUS_GROUPS: dict[str, tuple[str, ...]] = {
    "open": ("open",),
    "in_review": ("in_review", "escalated", "pending_approval"),
    "decided": ("decided",),
}
#: The queue's index per order (see `queue_page`); both are in `tables.py` and migration 0007.
QUEUE_INDEXES = {"score": "ix_fraud_scores_flagged_score", "newest": "ix_fraud_scores_flagged_time"}


@dataclass(frozen=True)
class QueueFilter:
    status: str | None = "open"
    rule: str | None = None
    day: date | None = None
    order: Order = "score"
    #: Which scorer's verdict the alert holds (`fraud_scores.source`): "nightly", "realtime".
    source: str | None = None


@dataclass(frozen=True)
class Alert:
    transaction_id: int
    user_id: int
    occurred_at: datetime
    amount: Decimal
    currency: str
    amount_usd: Decimal | None
    score: Decimal
    rule_ids: str
    reasons: str
    analysed_at: datetime
    source: str
    status: str
    claimed_by: int | None
    claimed_at: datetime | None
    decision: str | None
    note: str | None
    decided_by: int | None
    decided_at: datetime | None
    version: int

    @property
    def cursor(self) -> str:
        return f"{self.score}_{self.transaction_id}"


#: An alert: its verdict's columns (without `flagged` and the model version) and its case's.
#: Listed here, not built from `fraud.verdict_columns.COLUMNS`: the db layer sits below fraud.
_ALERT_COLUMNS = (
    fraud_scores.c.transaction_id,
    fraud_scores.c.user_id,
    fraud_scores.c.occurred_at,
    fraud_scores.c.amount,
    fraud_scores.c.currency,
    fraud_scores.c.amount_usd,
    fraud_scores.c.score,
    fraud_scores.c.rule_ids,
    fraud_scores.c.reasons,
    fraud_scores.c.analysed_at,
    fraud_scores.c.source,
    sa.func.coalesce(review_cases.c.status, "open").label("status"),
    review_cases.c.claimed_by,
    review_cases.c.claimed_at,
    review_cases.c.decision,
    review_cases.c.note,
    review_cases.c.decided_by,
    review_cases.c.decided_at,
    sa.func.coalesce(review_cases.c.version, 0).label("version"),
)


def _alerts() -> sa.Select[Any]:
    return sa.select(*_ALERT_COLUMNS).select_from(
        fraud_scores.outerjoin(
            review_cases, review_cases.c.transaction_id == fraud_scores.c.transaction_id
        )
    )


def _alert(row: Any) -> Alert:
    return Alert(**row._asdict())


def _filtered(query: sa.Select[Any], flt: QueueFilter) -> sa.Select[Any]:
    query = query.where(fraud_scores.c.flagged == sa.true())
    if flt.status:
        statuses = STATUS_GROUPS[flt.status]
        stored = review_cases.c.status.in_(statuses)
        query = query.where(
            sa.or_(stored, review_cases.c.status.is_(None)) if "open" in statuses else stored
        )
    if flt.rule:
        query = query.where(sa.func.find_in_set(flt.rule, fraud_scores.c.rule_ids) > 0)
    if flt.source:
        query = query.where(fraud_scores.c.source == flt.source)
    if flt.day:
        start = datetime(flt.day.year, flt.day.month, flt.day.day, tzinfo=UTC)
        query = query.where(
            fraud_scores.c.occurred_at >= start,
            fraud_scores.c.occurred_at < start + timedelta(days=1),
        )
    return query


def parse_cursor(cursor: str, order: Order) -> tuple[Any, int]:
    """`<score or occurred_at µs>_<transaction id>` -> (key, id); ValueError if malformed."""
    key, _, tx_id = cursor.partition("_")
    if order == "score":
        return Decimal(key), int(tx_id)
    return datetime.fromtimestamp(int(key) / 1_000_000, UTC), int(tx_id)


def cursor_of(alert: Alert, order: Order) -> str:
    if order == "score":
        return f"{alert.score}_{alert.transaction_id}"
    return f"{int(alert.occurred_at.timestamp() * 1_000_000)}_{alert.transaction_id}"


def queue_page(
    conn: sa.Connection, *, flt: QueueFilter, after: str | None, limit: int
) -> tuple[list[Alert], str | None]:
    """One page of alerts, highest score (or newest) first, and the cursor of the next page."""
    key_column = fraud_scores.c.score if flt.order == "score" else fraud_scores.c.occurred_at
    query = _filtered(_alerts(), flt).order_by(
        key_column.desc(), fraud_scores.c.transaction_id.desc()
    )
    if after:
        key, tx_id = parse_cursor(after, flt.order)
        # spelled out rather than a row comparison, which MariaDB does not turn into an index
        # range: this way a deep page starts at its place in the index instead of at the top
        query = query.where(
            sa.or_(
                key_column < key,
                sa.and_(key_column == key, fraud_scores.c.transaction_id < tx_id),
            )
        )
    # MariaDB otherwise reads `flagged = 1` as a ref lookup and walks the index from its top to
    # the cursor (seconds at depth 500k of 1M); forced, the cursor condition is a range and a
    # deep page costs what the first one does. A day filter uses the time index (a day's range,
    # then sorted), whatever the order.
    index = QUEUE_INDEXES["newest" if flt.day else flt.order]
    for dialect in ("mysql", "mariadb"):
        query = query.with_hint(fraud_scores, f"FORCE INDEX ({index})", dialect)
    rows = [_alert(row) for row in conn.execute(query.limit(limit + 1))]
    page = rows[:limit]
    return page, cursor_of(page[-1], flt.order) if len(rows) > limit else None


def get_alert(conn: sa.Connection, *, transaction_id: int, lock: bool = False) -> Alert | None:
    query = _alerts().where(
        fraud_scores.c.transaction_id == transaction_id, fraud_scores.c.flagged == sa.true()
    )
    row = conn.execute(query.with_for_update() if lock else query).first()
    return None if row is None else _alert(row)


def oldest_open(conn: sa.Connection, *, flt: QueueFilter) -> int | None:
    """The oldest unclaimed alert of a filter ("next case")."""
    query = _filtered(
        sa.select(fraud_scores.c.transaction_id).select_from(
            fraud_scores.outerjoin(
                review_cases, review_cases.c.transaction_id == fraud_scores.c.transaction_id
            )
        ),
        QueueFilter(status="open", rule=flt.rule, day=flt.day, source=flt.source),
    ).order_by(fraud_scores.c.occurred_at, fraud_scores.c.transaction_id)
    for dialect in ("mysql", "mariadb"):
        query = query.with_hint(fraud_scores, f"FORCE INDEX ({QUEUE_INDEXES['newest']})", dialect)
    return conn.execute(query.limit(1)).scalar()


def customer_history(conn: sa.Connection, *, user_id: int, limit: int = 20) -> list[Any]:
    return list(
        conn.execute(
            sa.select(transactions)
            .where(transactions.c.user_id == user_id)
            .order_by(transactions.c.occurred_at.desc())
            .limit(limit)
        )
    )


def terminal_frauds(
    conn: sa.Connection, *, terminal_id: int, since: datetime, limit: int = 20
) -> list[Any]:
    """The terminal's confirmed fraud since `since` (labels joined to their transactions)."""
    return list(
        conn.execute(
            sa.select(transactions, fraud_labels.c.labelled_at, fraud_labels.c.source)
            .join(fraud_labels, fraud_labels.c.transaction_id == transactions.c.id)
            .where(
                transactions.c.terminal_id == terminal_id,
                transactions.c.occurred_at >= since,
                fraud_labels.c.is_fraud.is_(True),
            )
            .order_by(transactions.c.occurred_at.desc())
            .limit(limit)
        )
    )
