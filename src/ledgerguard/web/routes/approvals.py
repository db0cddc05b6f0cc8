"""`/review/approvals`: four eyes. A second person approves or rejects, never the one who asked."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request, status
from fastapi.responses import RedirectResponse, Response

from ledgerguard.db import audit
from ledgerguard.db.cases import CaseError, pending_approvals, settle_approval, write_label
from ledgerguard.db.web_users import usernames
from ledgerguard.web.auth import CsrfSession, CurrentUser
from ledgerguard.web.backend import WebBackend, on_primary, write_on_primary
from ledgerguard.web.templating import render

router = APIRouter(prefix="/approvals", tags=["web"], include_in_schema=False)


def _pending(sync) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    rows = pending_approvals(sync)
    return {"approvals": rows, "who": usernames(sync, {row.requested_by for row in rows})}


@router.get("")
async def approvals_page(request: Request, backend: WebBackend, user: CurrentUser) -> Response:
    # read on the primary: an approval must see the latest state, and the list is short
    context = await on_primary(backend, _pending)
    return render(request, "approvals.html", **context)


def _settle(  # type: ignore[no-untyped-def]
    sync, *, approval_id: int, user_id: int, username: str, approve: bool, now: datetime
) -> None:
    row = settle_approval(sync, approval_id=approval_id, user_id=user_id, approve=approve, now=now)
    audit.record(
        sync,
        actor=username,
        action="approve" if approve else "reject",
        target=f"approval:{approval_id}",
        at=now,
        before={"status": "pending", "requested_by": row.requested_by},
        after={"status": "approved" if approve else "rejected"},
    )
    if approve and row.kind == "clear_high_score" and row.transaction_id is not None:
        source = f"analyst:{username} (four eyes)"
        before = write_label(
            sync, transaction_id=row.transaction_id, is_fraud=False, source=source, now=now
        )
        audit.record(
            sync,
            actor=username,
            action="label",
            target=f"transaction:{row.transaction_id}",
            at=now,
            before=before,
            after={"is_fraud": False, "source": source},
        )


@router.post("/{approval_id}/{verdict}")
async def settle(
    approval_id: Annotated[int, Path(gt=0)],
    verdict: Annotated[str, Path(pattern=r"^(approve|reject)$")],
    backend: WebBackend,
    session: CsrfSession,
) -> Response:
    try:
        await write_on_primary(
            backend,
            _settle,
            approval_id=approval_id,
            user_id=session.user.id,
            username=session.user.username,
            approve=verdict == "approve",
            now=datetime.now(UTC),
        )
    except CaseError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return RedirectResponse("/review/approvals", status_code=303)
