"""Shared dependencies, declared once as `Annotated` aliases and used by every route."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader

from ledgerguard.api.ratelimit import retry_after_header
from ledgerguard.api.services import ApiServices
from ledgerguard.apikeys import ApiKeyRecord, prefix_of

#: The scope a key needs to create transactions.
WRITE_SCOPE = "transactions:write"


async def get_services(request: Request) -> ApiServices:
    """`async` on purpose: FastAPI runs a plain `def` dependency in a thread per request."""
    return request.app.state.services


Services = Annotated[ApiServices, Depends(get_services)]

api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="Create one with `ledgerguard apikey create`; `--merchant ID` limits a key to "
    "one merchant's transactions, labels and alerts (403 for any other).",
)


def _too_many(wait: float, message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        message,
        headers={"Retry-After": retry_after_header(wait)},
    )


def _refused(services: ApiServices, address: str, message: str) -> HTTPException:
    """A 401 that costs the client address one token of its unauthenticated budget."""
    services.address_limiter.acquire(address)
    return HTTPException(status.HTTP_401_UNAUTHORIZED, message)


async def known_key(services: ApiServices, plain: str) -> ApiKeyRecord | None:
    """The stored key that `plain` is (active or revoked), or None; costs no rate-limit token."""
    prefix = prefix_of(plain)
    record = await services.keys.get(prefix) if prefix else None
    return record if record is not None and record.matches(plain) else None


async def current_key(
    request: Request, plain: Annotated[str | None, Security(api_key_header)]
) -> ApiKeyRecord:
    """The active key presented in `X-API-Key`, else 401; then the per-key rate limit (429).

    Requests without a valid key cost almost nothing: a client address whose failed attempts
    used up `api_unauthenticated_rate_limit` is answered 429 before any key lookup.
    """
    services: ApiServices = request.app.state.services
    address = request.client.host if request.client else "-"
    wait = services.address_limiter.exhausted(address)
    if wait:
        raise _too_many(wait, "too many requests without a valid API key from this address")
    if not plain:
        raise _refused(services, address, "missing X-API-Key header")
    record = await known_key(services, plain)
    if record is None:
        raise _refused(services, address, "unknown API key")
    if not record.active:
        raise _refused(services, address, "this API key has been revoked")
    wait = services.limiter.acquire(record.id)
    if wait:
        raise _too_many(wait, "rate limit of this API key exceeded")
    return record


CurrentKey = Annotated[ApiKeyRecord, Depends(current_key)]


async def write_key(
    request: Request, plain: Annotated[str | None, Security(api_key_header)]
) -> ApiKeyRecord:
    """`current_key` + `require_scope("transactions:write")` as one dependency (fewer nodes for
    FastAPI to solve). Same answers: 401, 429, 403, before the body is validated."""
    key = await current_key(request, plain)
    if not key.allows(WRITE_SCOPE):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"this API key lacks the scope {WRITE_SCOPE!r}"
        )
    return key


def require_scope(scope: str) -> Callable[..., Coroutine[Any, Any, ApiKeyRecord]]:
    async def check(key: CurrentKey) -> ApiKeyRecord:
        if not key.allows(scope):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"this API key lacks the scope {scope!r}"
            )
        return key

    return check


def outside_merchant(key: ApiKeyRecord, what: str) -> HTTPException:
    """The 403 for a key limited to one merchant touching another merchant's data.

    403, not 404, for reads too: transaction ids are sequential, so that a transaction exists
    is no secret worth hiding, and a 404 would send the client looking for a missing row when
    the key is what falls short. The message never says which merchant the row belongs to.
    """
    return HTTPException(
        status.HTTP_403_FORBIDDEN,
        f"this API key is limited to merchant {key.merchant_id}; {what} is outside it",
    )


def merchant_for_write(key: ApiKeyRecord, merchant_id: int | None) -> int | None:
    """The merchant a new transaction is stored with: a limited key fills in its own merchant
    when the body names none, and refuses (403) a body naming another."""
    if key.merchant_id is None:
        return merchant_id
    if merchant_id is None:
        return key.merchant_id
    if merchant_id != key.merchant_id:
        raise outside_merchant(key, f"merchant_id {merchant_id}")
    return merchant_id


WriteKey = Annotated[ApiKeyRecord, Depends(write_key)]
ReadKey = Annotated[ApiKeyRecord, Depends(require_scope("transactions:read"))]
AdminKey = Annotated[ApiKeyRecord, Depends(require_scope("admin"))]
