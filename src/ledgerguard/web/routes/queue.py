"""`/review/queue`: flagged transactions, by score or newest, filtered, one keyset page at a time."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import RedirectResponse, Response

from ledgerguard.db import audit
from ledgerguard.db.alert_queue import QueueFilter, oldest_open, parse_cursor, queue_page
from ledgerguard.db.cases import CaseError, claim
from ledgerguard.db.verdicts import SCORE_SOURCES
from ledgerguard.db.web_users import usernames
from ledgerguard.web.auth import CsrfSession, CurrentUser
from ledgerguard.web.backend import WebBackend, on_replica, write_on_primary
from ledgerguard.web.templating import render

router = APIRouter(prefix="/queue", tags=["web"], include_in_schema=False)

RuleParam = Annotated[str, Query(pattern=r"^[a-z_]{0,40}$")]
#: Real-time or nightly alerts (`fraud_scores.source`); empty: both.
SourceParam = Annotated[str, Query(pattern=f"^({'|'.join(SCORE_SOURCES)})?$")]


def queue_filter(
    status_: str, rule: str, day: date | None, order: str, source: str = ""
) -> QueueFilter:
    return QueueFilter(
        status=None if status_ == "all" else status_,
        rule=rule or None,
        day=day,
        order="newest" if order == "newest" else "score",
        source=source or None,
    )


@router.get("")
async def queue(
    request: Request,
    backend: WebBackend,
    user: CurrentUser,
    status_: Annotated[
        str, Query(alias="status", pattern=r"^(open|in_review|decided|all)$")
    ] = "open",
    rule: RuleParam = "",
    day: date | None = None,
    order: Annotated[str, Query(pattern=r"^(score|newest)$")] = "score",
    after: Annotated[str | None, Query(max_length=64)] = None,
    source: SourceParam = "",
) -> Response:
    """The whole page, or only the table rows when htmx asks (filters, next page)."""
    flt = queue_filter(status_, rule, day, order, source)
    if after is not None:
        try:
            parse_cursor(after, flt.order)
        except (ValueError, ArithmeticError):
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, "malformed page cursor"
            ) from None
    alerts, next_cursor = await on_replica(
        backend, queue_page, flt=flt, after=after, limit=backend.settings.web_page_size
    )
    who = await on_replica(backend, usernames, ids={a.claimed_by for a in alerts if a.claimed_by})
    template = "_queue_rows.html" if request.headers.get("HX-Request") else "queue.html"
    return render(
        request,
        template,
        alerts=alerts,
        who=who,
        next_cursor=next_cursor,
        flt=flt,
        status_value=status_,
        sources=SCORE_SOURCES,
        first_page=after is None,
    )


def _claim_next(
    sync, *, flt: QueueFilter, user_id: int, username: str, now: datetime
) -> int | None:  # type: ignore[no-untyped-def]
    """Claim the oldest unclaimed alert of the filter; a lost race tries the next one."""
    for _ in range(5):
        transaction_id = oldest_open(sync, flt=flt)
        if transaction_id is None:
            return None
        try:
            before, after = claim(sync, transaction_id=transaction_id, user_id=user_id, now=now)
        except CaseError:
            continue
        audit.record(
            sync,
            actor=username,
            action="claim",
            target=f"case:{transaction_id}",
            at=now,
            before={"status": before.status, "claimed_by": before.claimed_by},
            after={"status": after.status, "claimed_by": after.claimed_by},
        )
        return transaction_id
    return None


@router.post("/next")
async def next_case(
    backend: WebBackend,
    session: CsrfSession,
    rule: RuleParam = "",
    day: date | None = None,
    source: SourceParam = "",
) -> Response:
    """ "Next case": claim the oldest unclaimed alert of the analyst's filter and open it."""
    flt = queue_filter("open", rule, day, "newest", source)
    transaction_id, gtid = await write_on_primary(
        backend,
        _claim_next,
        flt=flt,
        user_id=session.user.id,
        username=session.user.username,
        now=datetime.now(UTC),
    )
    if transaction_id is None:
        return RedirectResponse("/review/queue?empty=1", status_code=303)
    return RedirectResponse(
        f"/review/cases/{transaction_id}?consistent_after={gtid or ''}", status_code=303
    )
