"""`/transactions`: durable writes on the primary, reads from the replica."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BeforeValidator, StringConstraints, TypeAdapter, ValidationError

from ledgerguard.api.deps import (
    WRITE_SECURITY,
    AdminKey,
    ReadKey,
    Services,
    WriteKey,
    merchant_for_write,
    outside_merchant,
)
from ledgerguard.api.errors import RETRY_AFTER_SECONDS
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
from ledgerguard.db.transactions import NewTransaction, get_transaction, list_transactions
from ledgerguard.db.verdicts import get_risk
from ledgerguard.db.writer import (
    DuplicateExternalId,
    IdempotencyConflict,
    WriteOutcomeUnknown,
    WriteRejected,
)
from ledgerguard.field_rules import moment_problem, occurred_at_problem
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


IDEMPOTENCY_KEY_HEADER = "idempotency-key"
_IDEMPOTENCY_KEY_HELP = "Retries with the same key and body return the original transaction"
_idempotency_key = TypeAdapter(Annotated[str, StringConstraints(min_length=1, max_length=255)])

#: What FastAPI would generate for an `Idempotency-Key` `Header(min_length=1, max_length=255)`
#: parameter and for the key's `Security` dependency, stated by hand (see `idempotency_key_of`).
_CREATE_OPENAPI = {
    "security": WRITE_SECURITY,
    "parameters": [
        {
            "name": IDEMPOTENCY_KEY_HEADER,
            "in": "header",
            "required": False,
            "schema": {
                "anyOf": [{"type": "string", "minLength": 1, "maxLength": 255}, {"type": "null"}],
                "description": _IDEMPOTENCY_KEY_HELP,
                "title": "Idempotency-Key",
            },
            "description": _IDEMPOTENCY_KEY_HELP,
        }
    ],
}


def idempotency_key_of(request: Request) -> str | None:
    """The `Idempotency-Key` header, or None; 422 (FastAPI's error shape) when not 1-255 chars.

    Read here instead of as a `Header` parameter: FastAPI's per-request parameter pass cost
    tens of µs of the API's CPU per POST for this one optional header (issue #13). Checked after
    the body, so a request with both wrong names only the body's errors.
    """
    value = request.headers.get(IDEMPOTENCY_KEY_HEADER)
    if value is None:
        return None
    try:
        return _idempotency_key.validate_python(value)
    except ValidationError as exc:
        raise RequestValidationError(
            [
                {**error, "loc": ("header", IDEMPOTENCY_KEY_HEADER, *error["loc"])}
                for error in exc.errors(include_url=False)
            ]
        ) from None


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TransactionCreated,
    responses=error_responses(*KEYED, 400, 409, 413),
    openapi_extra=_CREATE_OPENAPI,
)
async def create_transaction(
    body: TransactionCreate,
    key: WriteKey,
    request: Request,
    response: Response,
) -> TransactionCreated | Response:
    """Commit a transaction durably on the primary (the 201 means it is on disk).

    A key limited to a merchant stores its merchant when `merchant_id` is absent; another
    `merchant_id` is a 403."""
    idempotency_key = idempotency_key_of(request)
    services = request.app.state.services  # not a dependency: one node less per request
    merchant_id = merchant_for_write(key, body.merchant_id)
    now = datetime.now(UTC)
    occurred_at = body.occurred_at or now
    problem = occurred_at_problem(occurred_at)
    if problem:  # a valid date-time out of range: refused, like the importer does
        raise HTTPException(status.HTTP_400_BAD_REQUEST, problem)
    tx = NewTransaction(
        user_id=body.user_id,
        amount=body.amount,
        currency=body.currency,
        amount_usd=services.fx.to_usd(body.amount, body.currency, occurred_at.date()),
        occurred_at=occurred_at,
        created_at=now,
        external_id=body.external_id,
        terminal_id=body.terminal_id,
        merchant_id=merchant_id,
    )
    try:
        if idempotency_key is None:
            result = await services.writer.write(tx)
        else:
            request_hash = hashlib.sha256(body.model_dump_json().encode()).hexdigest()
            result = await services.writer.write_idempotent(
                tx, api_key_id=key.id, key=idempotency_key, request_hash=request_hash
            )
    except (IdempotencyConflict, DuplicateExternalId) as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except (WriteRejected, WriteOutcomeUnknown) as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            str(exc),
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        ) from None
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
        async with services.primary.connect() as conn:
            row = await get_transaction(conn, transaction_id=result.transaction_id)
        return TransactionCreated(
            **TransactionPublic.from_row(row).model_dump(), consistent_after=result.gtid
        )
    services.metrics.committed.inc()
    if tx.amount_usd is not None:
        services.metrics.amount_usd.inc(float(tx.amount_usd))
    created = TransactionCreated(
        **TransactionPublic.from_row(_StoredRow(result.transaction_id, tx)).model_dump(),
        consistent_after=result.gtid,
    )
    # a Response passes through FastAPI untouched: no second validation against
    # response_model and no jsonable_encoder walk (the schema in /docs is unchanged)
    return Response(created.model_dump_json(), status_code=201, media_type="application/json")


class _StoredRow:
    """The row as stored, without reading it back (values round-trip exactly)."""

    def __init__(self, transaction_id: int, tx: NewTransaction) -> None:
        self.id = transaction_id
        for name, value in tx.values().items():
            setattr(self, name, value)
        self.occurred_at = as_utc(tx.occurred_at, assume_utc=True)
        self.created_at = as_utc(tx.created_at, assume_utc=True)


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
