"""`/transactions`: durable writes on the primary, reads from the replica."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Path, Query, Request, Response, status
from pydantic import BeforeValidator

from ledgerguard.api.creation import IDEMPOTENCY_KEY_LENGTH, commit, transaction_to_store
from ledgerguard.api.deps import (
    AdminKey,
    ReadKey,
    Services,
    WriteKey,
    outside_merchant,
)
from ledgerguard.api.reads import FutureToken, check_token_not_future, read_connection
from ledgerguard.api.schemas import (
    KEYED,
    MAX_ID,
    LabelCreate,
    LabelPublic,
    RiskPublic,
    TransactionCreate,
    TransactionCreated,
    TransactionDetail,
    TransactionPublic,
    TransactionsPage,
    error_responses,
)
from ledgerguard.db.consistency import valid_gtid
from ledgerguard.db.fraud_results import UPSERT_LABELS, get_label
from ledgerguard.db.transactions import get_transaction, list_transactions
from ledgerguard.db.verdicts import get_risk
from ledgerguard.field_rules import moment_problem
from ledgerguard.utc import as_utc

router = APIRouter(prefix="/transactions", tags=["transactions"])

ConsistentAfter = Annotated[
    str | None,
    Query(
        max_length=4096,
        # MariaDB `domain-server-seq[,...]` or a MySQL GTID set (`uuid:1-5[,...]`)
        pattern=r"^(\d+-\d+-\d+(,\d+-\d+-\d+)*|[0-9a-fA-F-]{36}(:\d+(-\d+)?)+"
        r"(,[0-9a-fA-F-]{36}(:\d+(-\d+)?)+)*)$",
        description="`consistent_after` from a POST: wait (bounded) until the replica has it; "
        "a GTID beyond the primary's position is a 400",
    ),
]


def _iso_only(value: object) -> object:
    """Refuse what pydantic would read as a Unix timestamp (`0.5`): the document says
    `date-time`, so only ISO 8601 text is accepted."""
    if isinstance(value, str) and not (value[:4].isdigit() and "-" in value):
        raise ValueError("must be an ISO 8601 date-time such as 2025-01-31T00:00:00Z")
    return value


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_only)]


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value, assume_utc=True)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TransactionCreated,
    responses=error_responses(*KEYED, 400, 409, 413),
)
async def create_transaction(
    body: TransactionCreate,
    key: WriteKey,
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=IDEMPOTENCY_KEY_LENGTH[0],
            max_length=IDEMPOTENCY_KEY_LENGTH[1],
            description="Retries with the same key and body return the original transaction",
        ),
    ] = None,
) -> Response:
    """Commit a transaction durably on the primary (the 201 means it is on disk).

    A key limited to a merchant stores its merchant when `merchant_id` is absent; another
    `merchant_id` is a 403."""
    # The common valid request never gets here: `ledgerguard.api.fastpath` answers it in front
    # of FastAPI with the same two steps (`ledgerguard.api.creation`). This route answers what
    # the fast path hands over: every refusal, and every request the fast path does not take.
    services = request.app.state.services  # not a dependency: one node less per request
    tx = transaction_to_store(key, body, fx=services.fx, now=datetime.now(UTC))
    created = await commit(services, tx, key=key, body=body, idempotency_key=idempotency_key)
    # a Response passes through FastAPI untouched: no second validation against
    # response_model and no jsonable_encoder walk (the schema in /docs is unchanged)
    return created.response()


@router.get(
    "/{transaction_id}",
    response_model=TransactionDetail,
    responses=error_responses(*KEYED, 400, 404),
)
async def read_transaction(
    transaction_id: Annotated[int, Path(gt=0, le=MAX_ID)],
    key: ReadKey,
    services: Services,
    response: Response,
    consistent_after: ConsistentAfter = None,
) -> TransactionDetail:
    """One transaction with its fraud `risk` (null until scored), from the replica (see
    `consistent_after` for read-your-writes); 403 for another merchant's transaction when the
    key is limited to one merchant."""
    token = await _token(consistent_after, services)
    async with read_connection(services, consistent_after=token) as (conn, source):
        row = await get_transaction(conn, transaction_id=transaction_id)
        visible = row is not None and key.covers_merchant(row.merchant_id)
        risk = await get_risk(conn, transaction_id=transaction_id) if visible else None
    response.headers["X-Read-Source"] = source
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"transaction {transaction_id} not found")
    if not visible:
        raise outside_merchant(key, f"transaction {transaction_id}")
    return TransactionDetail(
        **TransactionPublic.from_row(row).model_dump(),
        risk=RiskPublic.from_row(risk) if risk is not None else None,
    )


@router.get("", response_model=TransactionsPage, responses=error_responses(*KEYED, 400))
async def list_user_transactions(
    key: ReadKey,
    services: Services,
    response: Response,
    user_id: Annotated[int | None, Query(gt=0, le=MAX_ID)] = None,
    since: Annotated[IsoDateTime | None, Query(description="occurred_at ≥ since (UTC)")] = None,
    until: Annotated[IsoDateTime | None, Query(description="occurred_at < until (UTC)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(pattern=r"^\d{1,19}$", description="from `next`")] = None,
    consistent_after: ConsistentAfter = None,
) -> TransactionsPage:
    """Transactions in id order, one keyset page at a time, from the replica (only the key's
    merchant's when the key is limited to one)."""
    since, until = _utc(since), _utc(until)
    if since and until and since >= until:
        # each is valid alone, so the document cannot say it: a refusal (400), not a 422
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "since must be before until")
    token = await _token(consistent_after, services)
    async with read_connection(services, consistent_after=token) as (conn, source):
        rows = await list_transactions(
            conn,
            user_id=user_id,
            merchant_id=key.merchant_id,
            since=since,
            until=until,
            after_id=int(cursor) if cursor else None,
            limit=limit + 1,
        )
    response.headers["X-Read-Source"] = source
    page = rows[:limit]
    return TransactionsPage(
        data=[TransactionPublic.from_row(row) for row in page],
        count=len(page),
        next=str(page[-1].id) if len(rows) > limit else None,
    )


@router.post(
    "/{transaction_id}/label",
    response_model=LabelPublic,
    responses=error_responses(*KEYED, 400, 404, 413),
)
async def label_transaction(
    transaction_id: Annotated[int, Path(gt=0, le=MAX_ID)],
    body: LabelCreate,
    key: AdminKey,
    services: Services,
) -> LabelPublic:
    """Record a fraud label (scope `admin`); the latest label of a transaction wins."""
    labelled_at = body.labelled_at or datetime.now(UTC)
    problem = moment_problem(labelled_at, field="labelled_at")
    if problem:  # a valid date-time out of range: refused, like the label importer does
        raise HTTPException(status.HTTP_400_BAD_REQUEST, problem)
    async with services.primary.begin() as conn:
        row = await get_transaction(conn, transaction_id=transaction_id)
        if row is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"transaction {transaction_id} not found"
            )
        if not key.covers_merchant(row.merchant_id):
            raise outside_merchant(key, f"transaction {transaction_id}")
        await conn.execute(
            UPSERT_LABELS,
            [
                {
                    "transaction_id": transaction_id,
                    "external_id": row.external_id,
                    "is_fraud": body.is_fraud,
                    "labelled_at": labelled_at,
                    "source": body.source,
                }
            ],
        )
    return LabelPublic(
        transaction_id=transaction_id,
        is_fraud=body.is_fraud,
        source=body.source,
        labelled_at=labelled_at,
    )


@router.get(
    "/{transaction_id}/label",
    response_model=LabelPublic,
    responses=error_responses(*KEYED, 400, 404),
)
async def read_label(
    transaction_id: Annotated[int, Path(gt=0, le=MAX_ID)],
    key: ReadKey,
    services: Services,
    response: Response,
    consistent_after: ConsistentAfter = None,
) -> LabelPublic:
    """The transaction's current label (API, import or an analyst's decision), from the replica."""
    token = await _token(consistent_after, services)
    async with read_connection(services, consistent_after=token) as (conn, source):
        if key.merchant_id is not None:
            tx = await get_transaction(conn, transaction_id=transaction_id)
            if tx is not None and not key.covers_merchant(tx.merchant_id):
                raise outside_merchant(key, f"transaction {transaction_id}")
        row = await get_label(conn, transaction_id=transaction_id)
    response.headers["X-Read-Source"] = source
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"transaction {transaction_id} has no label")
    return LabelPublic(
        transaction_id=transaction_id,
        is_fraud=row.is_fraud,
        source=row.source,
        labelled_at=row.labelled_at,
    )


async def _token(consistent_after: str | None, services: Services) -> str | None:
    if consistent_after is None:
        return None
    if not valid_gtid(consistent_after, services.flavour):
        # well-formed for the document (either flavour) but not this server's GTID format
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            "consistent_after must be a GTID as returned by POST /transactions",
        )
    try:
        await check_token_not_future(services, consistent_after)
    except FutureToken as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    return consistent_after
