"""`/alerts`: flagged transactions, newest first, from the replica."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from ledgerguard.api.deps import ReadKey, Services
from ledgerguard.api.reads import read_connection
from ledgerguard.api.schemas import KEYED, AlertPublic, AlertsPage, error_responses
from ledgerguard.db.verdicts import list_alerts

router = APIRouter(prefix="/alerts", tags=["alerts"])


@router.get("", response_model=AlertsPage, responses=error_responses(*KEYED))
async def list_flagged(
    key: ReadKey,
    services: Services,
    response: Response,
    rule: Annotated[
        str | None,
        Query(
            pattern=r"^[a-z_]{1,64}$",
            description="only alerts this rule fired for (e.g. `velocity`, `large_amount`, "
            "`model`)",
        ),
    ] = None,
    source: Annotated[
        Literal["realtime", "nightly"] | None,
        Query(
            description="only alerts whose verdict comes from this scorer: `realtime` (the "
            "streaming scorer) or `nightly` (the nightly analysis, which revises real-time ones)"
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(pattern=r"^\d{1,19}$", description="from `next`")] = None,
) -> AlertsPage:
    """Flagged transactions, largest (newest) transaction id first, one keyset page at a time
    (only the key's merchant's when the key is limited to one)."""
    async with read_connection(services, consistent_after=None) as (conn, read_source):
        rows = await list_alerts(
            conn,
            before_id=int(cursor) if cursor else None,
            rule=rule,
            limit=limit + 1,
            source=source,
            merchant_id=key.merchant_id,
        )
    response.headers["X-Read-Source"] = read_source
    page = rows[:limit]
    return AlertsPage(
        data=[AlertPublic.from_row(row) for row in page],
        count=len(page),
        next=str(page[-1].transaction_id) if len(rows) > limit else None,
    )
