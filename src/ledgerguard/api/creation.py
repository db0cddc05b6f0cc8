"""What `POST /transactions` does once its key and body are valid: the row, the write, the 201.

Shared by the route (`ledgerguard.api.routes.transactions`) and the fast path
(`ledgerguard.api.fastpath`), so the two cannot answer differently: both call `transaction_to_store`
(403 for another merchant, 400 for an `occurred_at` out of range) and `commit` (409, 503, or the
201's body and headers).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from fastapi import HTTPException, status
from fastapi.responses import Response

from ledgerguard.api.deps import merchant_for_write
from ledgerguard.api.errors import RETRY_AFTER_SECONDS
from ledgerguard.api.schemas import TransactionCreate, TransactionCreated
from ledgerguard.api.services import ApiServices
from ledgerguard.apikeys import ApiKeyRecord
from ledgerguard.db.transactions import NewTransaction, get_transaction
from ledgerguard.db.write_errors import (
    DuplicateExternalId,
    IdempotencyConflict,
    WriteOutcomeUnknown,
    WriteRejected,
)
from ledgerguard.field_rules import occurred_at_problem
from ledgerguard.money import FxRates
from ledgerguard.utc import as_utc

#: `Idempotency-Key` as it arrives (ASGI header names are lower case) and its length bounds.
IDEMPOTENCY_KEY_HEADER = "idempotency-key"
IDEMPOTENCY_KEY_LENGTH = (1, 255)


def transaction_to_store(
    key: ApiKeyRecord, body: TransactionCreate, *, fx: FxRates, now: datetime
) -> NewTransaction:
    """The row to insert. A key limited to a merchant stores its merchant when the body names
    none and refuses another (403); a valid `occurred_at` out of range is refused (400), like
    the importer does. No side effects: the fast path calls it before taking a rate-limit token.
    """
    merchant_id = merchant_for_write(key, body.merchant_id)
    occurred_at = body.occurred_at or now
    problem = occurred_at_problem(occurred_at)
    if problem:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, problem)
    return NewTransaction(
        user_id=body.user_id,
        amount=body.amount,
        currency=body.currency,
        amount_usd=fx.to_usd(body.amount, body.currency, occurred_at.date()),
        occurred_at=occurred_at,
        created_at=now,
        external_id=body.external_id,
        terminal_id=body.terminal_id,
        merchant_id=merchant_id,
    )


@dataclass(frozen=True)
class Created:
    """The 201's JSON body and the headers it adds to content-length and content-type."""

    content: bytes
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)

    def response(self) -> Response:
        """The answer as FastAPI sends a route's `Response`: content-length, content-type, then
        the extra headers (in this order, as FastAPI appends a route's `response.headers`)."""
        response = Response(self.content, status_code=201, media_type="application/json")
        response.raw_headers.extend(self.headers)
        return response


async def commit(
    services: ApiServices,
    tx: NewTransaction,
    *,
    key: ApiKeyRecord,
    body: TransactionCreate,
    idempotency_key: str | None,
) -> Created:
    """Commit `tx` durably on the primary (group commit), or once per `(key, idempotency_key)`.

    Raises HTTPException 409 (external_id taken, Idempotency-Key reused with another body) and
    503 with Retry-After (queue full, outcome unknown); database errors propagate to the app's
    handlers (503 for an outage).
    """
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
        async with services.primary.connect() as conn:
            row = await get_transaction(conn, transaction_id=result.transaction_id)
        created = TransactionCreated.from_row(row, consistent_after=result.gtid)
        return Created(created.model_dump_json().encode(), [(b"idempotent-replayed", b"true")])
    services.metrics.committed.inc()
    if tx.amount_usd is not None:
        services.metrics.amount_usd.inc(float(tx.amount_usd))
    # the row as stored, without reading it back (values round-trip exactly)
    created = TransactionCreated.from_row(
        _StoredRow(result.transaction_id, tx), consistent_after=result.gtid
    )
    return Created(created.model_dump_json().encode())


class _StoredRow:
    """A `NewTransaction` with its id, read like a database row by `from_row`."""

    def __init__(self, transaction_id: int, tx: NewTransaction) -> None:
        self.id = transaction_id
        self.__dict__.update(tx.values())
        self.occurred_at = as_utc(tx.occurred_at, assume_utc=True)
        self.created_at = as_utc(tx.created_at, assume_utc=True)
