"""`/review/cases/{id}`: one alert with its context, claimed and decided by one analyst.

A decision is one transaction on the primary: the case row (locked, version-checked), the label
in `fraud_labels` (the table the label API and imports write), four-eyes requests, and the audit
rows. Any refusal raises before the commit, so nothing is half-written. The page after a write
reads the replica with the commit's GTID (read-your-writes).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Path, Query, Request, status
from fastapi.responses import RedirectResponse, Response

from ledgerguard.db import audit
from ledgerguard.db.alert_queue import Alert, customer_history, get_alert, terminal_frauds
from ledgerguard.db.cases import (
    DECISIONS,
    CaseError,
    case_state,
    claim,
    decide,
    release,
    request_approval,
    write_label,
)
from ledgerguard.db.consistency import valid_gtid
from ledgerguard.db.transactions import get_transaction_sync
from ledgerguard.db.web_users import usernames
from ledgerguard.web.auth import CsrfSession, CurrentUser
from ledgerguard.web.backend import WebBackend, on_replica, write_on_primary
from ledgerguard.web.templating import render

router = APIRouter(prefix="/cases", tags=["web"], include_in_schema=False)

CaseId = Annotated[int, Path(gt=0, le=2**63 - 1)]
#: How far back the case page looks for the terminal's confirmed fraud.
TERMINAL_WINDOW = timedelta(days=30)


def _case_context(sync, *, transaction_id: int) -> dict[str, Any] | None:  # type: ignore[no-untyped-def]
    alert = get_alert(sync, transaction_id=transaction_id)
    if alert is None:
        return None
    tx = get_transaction_sync(sync, transaction_id=transaction_id)
    terminal = tx.terminal_id if tx is not None else None
    history = customer_history(sync, user_id=alert.user_id)
    frauds = (
        terminal_frauds(sync, terminal_id=terminal, since=alert.occurred_at - TERMINAL_WINDOW)
        if terminal is not None
        else []
    )
    who = usernames(sync, {i for i in (alert.claimed_by, alert.decided_by) if i})
    return {"alert": alert, "tx": tx, "history": history, "frauds": frauds, "who": who}


def _token(consistent_after: str | None, backend: WebBackend) -> str | None:
    if consistent_after and valid_gtid(consistent_after, backend.flavour):
        return consistent_after
    return None


@router.get("/{transaction_id}")
async def case_page(
    request: Request,
    backend: WebBackend,
    user: CurrentUser,
    transaction_id: CaseId,
    consistent_after: Annotated[str | None, Query(max_length=4096)] = None,
    message: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    context = await on_replica(
        backend,
        _case_context,
        consistent_after=_token(consistent_after, backend),
        transaction_id=transaction_id,
    )
    if context is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"transaction {transaction_id} is not a flagged alert"
        )
    return render(
        request,
        "case.html",
        decisions=DECISIONS,
        message=message,
        four_eyes_score=backend.settings.web_four_eyes_score,
        **context,
    )


def _record_case(
    sync, username: str, action: str, before: Alert, after: Alert, now: datetime
) -> None:  # type: ignore[no-untyped-def]
    audit.record(
        sync,
        actor=username,
        action=action,
        target=f"case:{before.transaction_id}",
        at=now,
        before=case_state(before),
        after=case_state(after),
    )


def _claim(sync, *, transaction_id: int, user_id: int, username: str, now: datetime) -> None:  # type: ignore[no-untyped-def]
    before, after = claim(sync, transaction_id=transaction_id, user_id=user_id, now=now)
    _record_case(sync, username, "claim", before, after, now)


def _release(sync, *, transaction_id: int, user_id: int, username: str, now: datetime) -> None:  # type: ignore[no-untyped-def]
    before, after = release(sync, transaction_id=transaction_id, user_id=user_id)
    _record_case(sync, username, "release", before, after, now)


def _decide(  # type: ignore[no-untyped-def]
    sync,
    *,
    transaction_id: int,
    user_id: int,
    username: str,
    version: int,
    decision: str,
    note: str,
    four_eyes_score: Any,
    now: datetime,
) -> str:
    before, after = decide(
        sync,
        transaction_id=transaction_id,
        user_id=user_id,
        version=version,
        decision=decision,
        note=note,
        four_eyes_score=four_eyes_score,
        now=now,
    )
    _record_case(sync, username, "decision", before, after, now)
    if after.status == "decided":
        is_fraud = decision == "confirm_fraud"
        label_before = write_label(
            sync,
            transaction_id=transaction_id,
            is_fraud=is_fraud,
            source=f"analyst:{username}",
            now=now,
        )
        audit.record(
            sync,
            actor=username,
            action="label",
            target=f"transaction:{transaction_id}",
            at=now,
            before=label_before,
            after={"is_fraud": is_fraud, "source": f"analyst:{username}"},
        )
        return "decided: the label is stored"
    if after.status == "pending_approval":
        approval_id = request_approval(
            sync,
            kind="clear_high_score",
            transaction_id=transaction_id,
            payload=json.dumps({"decision": decision, "note": note, "score": str(after.score)}),
            user_id=user_id,
            now=now,
        )
        audit.record(
            sync,
            actor=username,
            action="approval_requested",
            target=f"approval:{approval_id}",
            at=now,
            after={"transaction_id": transaction_id, "kind": "clear_high_score"},
        )
        return "a high score cleared as legitimate waits for a second person's approval"
    return "escalated: the case is back in the queue for a senior analyst"


async def _change(
    backend: WebBackend, work: Any, transaction_id: int, **kwargs: Any
) -> RedirectResponse:
    try:
        message, gtid = await write_on_primary(
            backend, work, transaction_id=transaction_id, now=datetime.now(UTC), **kwargs
        )
    except CaseError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    query = f"consistent_after={gtid or ''}"
    if message:
        query += "&message=" + message.replace(" ", "+").replace(":", "%3A").replace("'", "%27")
    return RedirectResponse(f"/review/cases/{transaction_id}?{query}", status_code=303)


@router.post("/{transaction_id}/claim")
async def claim_case(transaction_id: CaseId, backend: WebBackend, session: CsrfSession) -> Response:
    return await _change(
        backend, _claim, transaction_id, user_id=session.user.id, username=session.user.username
    )


@router.post("/{transaction_id}/release")
async def release_case(
    transaction_id: CaseId, backend: WebBackend, session: CsrfSession
) -> Response:
    return await _change(
        backend, _release, transaction_id, user_id=session.user.id, username=session.user.username
    )


@router.post("/{transaction_id}/decide")
async def decide_case(
    transaction_id: CaseId,
    backend: WebBackend,
    session: CsrfSession,
    decision: Annotated[str, Form(pattern=r"^(confirm_fraud|legitimate|escalate)$")],
    version: Annotated[int, Form(ge=0)],
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    return await _change(
        backend,
        _decide,
        transaction_id,
        user_id=session.user.id,
        username=session.user.username,
        version=version,
        decision=decision,
        note=note,
        four_eyes_score=backend.settings.web_four_eyes_score,
    )
