"""SQL of case reviews: claim, release, decide, label, four-eyes approvals.

A case is the row of `review_cases` of an alert (`ledgerguard.db.alert_queue`), created by the
first change. Writes lock the case row (`SELECT ... FOR UPDATE`) and check the form's
`version`: two analysts never decide the same case, and a stale form changes nothing.
Functions take a sync `Connection` (the web app calls them through `run_sync`, on the primary).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ledgerguard.db.alert_queue import Alert, get_alert
from ledgerguard.db.fraud_results import UPSERT_LABELS
from ledgerguard.db.tables import approvals, fraud_labels, review_cases, transactions
from ledgerguard.errors import LedgerGuardError

DECISIONS = ("confirm_fraud", "legitimate", "escalate")


class CaseError(LedgerGuardError):
    """A case change refused as it stands (claimed by someone else, decided meanwhile...)."""


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
