"""SQL of the alert queue and of case reviews: pages of flagged verdicts, claim, decide.

An alert is a flagged row of `fraud_scores` (nightly or real-time); its review is the row of
`review_cases` with the same `transaction_id`, absent while nobody has touched it. Pages are
keyset pages over `ix_fraud_scores_flagged_score` / `ix_fraud_scores_flagged_time`, so page 1000
costs what page 1 costs. Writes lock the case row (`SELECT ... FOR UPDATE`) and check the form's
`version`: two analysts never decide the same case, and a stale form changes nothing.
Functions take a sync `Connection` (the web app calls them through `run_sync`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ledgerguard.db.fraud_results import UPSERT_LABELS
from ledgerguard.db.tables import (
    approvals,
    fraud_labels,
    fraud_scores,
    review_cases,
    transactions,
)
from ledgerguard.errors import LedgerGuardError

Order = Literal["score", "newest"]
#: Queue filter -> stored statuses (an absent review row counts as open).
STATUS_GROUPS: dict[str, tuple[str, ...]] = {
    "open": ("open",),
    "in_review": ("in_review", "escalated", "pending_approval"),
    "decided": ("decided",),
}
DECISIONS = ("confirm_fraud", "legitimate", "escalate")
#: The queue's index per order (see `queue_page`); both are in `tables.py` and migration 0007.
QUEUE_INDEXES = {"score": "ix_fraud_scores_flagged_score", "newest": "ix_fraud_scores_flagged_time"}


class CaseError(LedgerGuardError):
    """A case change refused as it stands (claimed by someone else, decided meanwhile...)."""


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


def case_state(alert: Alert) -> dict[str, Any]:
    """What the audit trail records as a case's before/after."""
    return {
        "status": alert.status,
        "claimed_by": alert.claimed_by,
        "decision": alert.decision,
        "note": alert.note,
        "version": alert.version,
    }


def _locked(conn: sa.Connection, transaction_id: int) -> Alert:
    alert = get_alert(conn, transaction_id=transaction_id, lock=True)
    if alert is None:
        raise CaseError(f"transaction {transaction_id} is not a flagged alert")
    return alert


def _write_case(conn: sa.Connection, alert: Alert, **values: Any) -> None:
    values["version"] = alert.version + 1
    if alert.version == 0 and alert.status == "open" and alert.claimed_by is None:
        try:
            conn.execute(
                sa.insert(review_cases).values(transaction_id=alert.transaction_id, **values)
            )
            return
        except IntegrityError:
            raise CaseError("the case changed meanwhile; reload it") from None
    done = conn.execute(
        sa.update(review_cases)
        .where(
            review_cases.c.transaction_id == alert.transaction_id,
            review_cases.c.version == alert.version,
        )
        .values(**values)
    )
    if done.rowcount != 1:
        raise CaseError("the case changed meanwhile; reload it")


def claim(
    conn: sa.Connection, *, transaction_id: int, user_id: int, now: datetime
) -> tuple[Alert, Alert]:
    """Claim a case for `user_id` (in the caller's transaction); returns (before, after)."""
    alert = _locked(conn, transaction_id)
    if alert.status == "decided":
        raise CaseError(f"case {transaction_id} is already decided")
    if alert.claimed_by is not None and alert.claimed_by != user_id:
        raise CaseError(f"case {transaction_id} is claimed by someone else")
    if alert.status == "pending_approval":
        raise CaseError(f"case {transaction_id} is waiting for a second person's approval")
    _write_case(conn, alert, status="in_review", claimed_by=user_id, claimed_at=now)
    return alert, _locked(conn, transaction_id)


def release(conn: sa.Connection, *, transaction_id: int, user_id: int) -> tuple[Alert, Alert]:
    alert = _locked(conn, transaction_id)
    if alert.claimed_by != user_id or alert.status != "in_review":
        raise CaseError(f"case {transaction_id} is not claimed by you")
    _write_case(conn, alert, status="open", claimed_by=None, claimed_at=None)
    return alert, _locked(conn, transaction_id)


def write_label(
    conn: sa.Connection, *, transaction_id: int, is_fraud: bool, source: str, now: datetime
) -> dict[str, Any] | None:
    """Store the label (the table the label API and imports use); returns the label before."""
    before = conn.execute(
        sa.select(fraud_labels.c.is_fraud, fraud_labels.c.source).where(
            fraud_labels.c.transaction_id == transaction_id
        )
    ).first()
    external_id = conn.execute(
        sa.select(transactions.c.external_id).where(transactions.c.id == transaction_id)
    ).scalar()
    conn.execute(
        UPSERT_LABELS,
        [
            {
                "transaction_id": transaction_id,
                "external_id": external_id,
                "is_fraud": is_fraud,
                "labelled_at": now,
                "source": source[:64],
            }
        ],
    )
    return None if before is None else {"is_fraud": bool(before.is_fraud), "source": before.source}


def decide(
    conn: sa.Connection,
    *,
    transaction_id: int,
    user_id: int,
    version: int,
    decision: str,
    note: str,
    four_eyes_score: Decimal,
    now: datetime,
) -> tuple[Alert, Alert]:
    """Record a decision on a case the user holds, at the version their form showed.

    `confirm_fraud` / `legitimate` close the case (the label is the caller's next statement, in
    the same transaction); `escalate` hands it back unclaimed for a senior; `legitimate` on a
    score at or above `four_eyes_score` parks it until another person approves.
    """
    if decision not in DECISIONS:
        raise CaseError(f"unknown decision {decision!r}; choose from {', '.join(DECISIONS)}")
    alert = _locked(conn, transaction_id)
    if alert.status == "decided":
        raise CaseError(f"case {transaction_id} was decided meanwhile; nothing was written")
    if alert.claimed_by != user_id:
        who = "nobody" if alert.claimed_by is None else "someone else"
        raise CaseError(f"case {transaction_id} is claimed by {who}; claim it before deciding")
    if alert.version != version:
        raise CaseError(f"case {transaction_id} changed since the form was shown; reload it")
    if decision == "escalate":
        values: dict[str, Any] = {"status": "escalated", "claimed_by": None, "claimed_at": None}
    elif decision == "legitimate" and alert.score >= four_eyes_score:
        values = {"status": "pending_approval"}
    else:
        values = {"status": "decided", "decided_by": user_id, "decided_at": now}
    _write_case(conn, alert, decision=decision, note=note, **values)
    return alert, _locked(conn, transaction_id)


def request_approval(
    conn: sa.Connection,
    *,
    kind: str,
    transaction_id: int | None,
    payload: str,
    user_id: int,
    now: datetime,
) -> int:
    result = conn.execute(
        sa.insert(approvals).values(
            kind=kind,
            transaction_id=transaction_id,
            payload=payload,
            requested_by=user_id,
            requested_at=now,
            status="pending",
        )
    )
    return int(result.inserted_primary_key[0])


def pending_approvals(conn: sa.Connection) -> list[Any]:
    return list(
        conn.execute(
            sa.select(approvals)
            .where(approvals.c.status == "pending")
            .order_by(approvals.c.requested_at)
        )
    )


def settle_approval(
    conn: sa.Connection, *, approval_id: int, user_id: int, approve: bool, now: datetime
) -> Any:
    """Approve or reject someone else's pending request; returns the request row."""
    row = conn.execute(
        sa.select(approvals).where(approvals.c.id == approval_id).with_for_update()
    ).first()
    if row is None or row.status != "pending":
        raise CaseError(f"approval {approval_id} is not pending")
    if row.requested_by == user_id:
        raise CaseError("four eyes: a second person must approve this, not the one who asked")
    conn.execute(
        sa.update(approvals)
        .where(approvals.c.id == approval_id)
        .values(status="approved" if approve else "rejected", decided_by=user_id, decided_at=now)
    )
    if row.transaction_id is not None:
        alert = _locked(conn, row.transaction_id)
        if approve:
            _write_case(conn, alert, status="decided", decided_by=row.requested_by, decided_at=now)
        else:
            _write_case(conn, alert, status="in_review", decision=None)
    return row
