"""The fast path: a valid `POST /transactions` answered in front of FastAPI (issue #13).

Almost every request the API serves is a valid POST /transactions. Through FastAPI each one
passed five ASGI layers each way, the router's scan of every route, the dependency solver
(parameter passes, an exit stack, a content-type parse by the email package), and a validated
response: about half of the API's CPU per request, more than the write itself. `CreateFastPath`
sits in front of all that, outermost in the app's middleware stack, and does only what such a
request needs, with the same pieces the route uses:

* the body is parsed and validated in one step, `TransactionCreate.model_validate_json` (less
  than half the CPU of FastAPI's `json.loads` then the model in Python mode). Every body it
  accepts, FastAPI's way accepts too, with the same values (tested on the tricky cases in
  `tests/unit/test_api_hot_path.py`); the few it refuses that FastAPI takes (a UTF-8 byte-order
  mark, UTF-16) are handed over like any refusal, so the route answers them;
* the key is checked with the same cache (`deps.known_key`), the same per-address and per-key
  limits, and the same scope;
* the row, the write and the 201 come from `ledgerguard.api.creation`, which the route calls too;
* the request is counted in the same metrics, with the route's template (`ApiMetrics`).

On any deviation before the write (a body FastAPI would refuse or parse differently, an unusual
header, a missing, unknown, revoked or under-scoped key, a rate limit reached, another
merchant, an `occurred_at` out of range, an invalid Idempotency-Key) it takes no side effect and
hands the request to the full app, with the body it read replayed, so every refusal is the one
the route gives, byte for byte. Two failures are answered here instead, by the app's own
exception handlers, as the route's would be: a key lookup that failed (no server answered and
the key is not cached; handing over would look the key up again, and a stalled primary would
cost the client twice `lookup_timeout`), and any error once the write was sent (409, 503, an
outage; handing over would write twice).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, NamedTuple

from fastapi import HTTPException
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request

from ledgerguard.api.creation import (
    IDEMPOTENCY_KEY_HEADER,
    IDEMPOTENCY_KEY_LENGTH,
    commit,
    transaction_to_store,
)
from ledgerguard.api.deps import WRITE_SCOPE, api_key_header, known_key
from ledgerguard.api.metrics import (
    REQUEST_START,
    ApiMetrics,
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
)
from ledgerguard.api.schemas import TransactionCreate
from ledgerguard.api.services import ApiServices
from ledgerguard.apikeys import ApiKeyRecord
from ledgerguard.db.transactions import NewTransaction

_API_KEY = api_key_header.model.name.lower().encode()
_IDEMPOTENCY_KEY = IDEMPOTENCY_KEY_HEADER.encode()


class _Write(NamedTuple):
    """A request the fast path took: checked, and its key's rate-limit token taken."""

    services: ApiServices
    key: ApiKeyRecord
    body: TransactionCreate
    tx: NewTransaction
    idempotency_key: str | None


class _LookupFailed(NamedTuple):
    """The key lookup raised (no server answered, the key not cached): nothing was taken."""

    error: Exception


class CreateFastPath:
    """Pure ASGI middleware answering valid `POST <path>` requests itself (see the module)."""

    def __init__(
        self, app: ASGIApp, *, metrics: ApiMetrics, max_body_bytes: int, path: str
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.path = path
        #: requests answered here and requests handed to the app (tests; cheap to keep)
        self.taken = 0
        self.handed_over = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        headers = self._headers(scope)
        if headers is None:
            await self._hand_over(scope, receive, send, start, [])
            return
        messages: list[Message] = []
        body = await _read_body(receive, messages)
        write = None if body is None else await self._accept(scope, headers, body)
        if write is None:
            await self._hand_over(scope, receive, send, start, messages)
            return
        self.taken += 1
        status = 500  # as `MetricsMiddleware` counts a request that raised
        try:
            if isinstance(write, _LookupFailed):  # the route's answer, without a second lookup
                error = write.error
            else:
                try:
                    created = await commit(
                        write.services,
                        write.tx,
                        key=write.key,
                        body=write.body,
                        idempotency_key=write.idempotency_key,
                    )
                except Exception as exc:  # noqa: BLE001 - rendered by the app's handlers below
                    error = exc
                else:
                    response = created.response()
                    status = response.status_code
                    await send(
                        {
                            "type": "http.response.start",
                            "status": status,
                            "headers": response.raw_headers,
                        }
                    )
                    await send({"type": "http.response.body", "body": response.body})
                    return
            response = await _handled(scope, _replay(messages, receive), error)
            status = response.status_code
            await response(scope, receive, send)
        finally:
            self.metrics.observe_request("POST", self.path, status, time.perf_counter() - start)

    def _headers(self, scope: Scope) -> dict[bytes, bytes] | None:
        """The request's headers when they are the plain kind the fast path takes, else None.

        Taken: `Content-Type: application/json` exactly (FastAPI parses others with the email
        package), a Content-Length within the body limit (larger: the 413 comes from
        `BodySizeLimit`), an `X-API-Key`, no header named twice (Starlette reads the first).
        """
        raw = scope["headers"]
        headers = dict(raw)
        if len(headers) != len(raw) or _API_KEY not in headers:
            return None
        if headers.get(b"content-type") != b"application/json" or b"transfer-encoding" in headers:
            return None
        length = headers.get(b"content-length", b"")
        if not length.isdigit() or int(length) > self.max_body_bytes:
            return None
        return headers

    async def _accept(
        self, scope: Scope, headers: dict[bytes, bytes], body: bytes
    ) -> _Write | _LookupFailed | None:
        """Everything checked, and the key's rate-limit token taken; `_LookupFailed` when the
        key could not be looked up (the route would raise the same error at the same point);
        None (nothing taken) for anything else the route would answer otherwise than 201."""
        services: ApiServices | None = getattr(scope["app"].state, "services", None)
        if services is None:
            return None
        try:
            payload = TransactionCreate.model_validate_json(body)
        except Exception:  # noqa: BLE001 - JSON, encoding, validation, nesting: the route's answer
            return None
        idempotency_key = headers.get(_IDEMPOTENCY_KEY)
        if idempotency_key is not None:
            idempotency_key = idempotency_key.decode("latin-1")  # as Starlette decodes headers
            low, high = IDEMPOTENCY_KEY_LENGTH
            if not low <= len(idempotency_key) <= high:
                return None
        client = scope.get("client")
        if services.address_limiter.exhausted(client[0] if client else "-"):
            return None
        try:
            key = await known_key(services, headers[_API_KEY].decode("latin-1"))
        except Exception as exc:  # noqa: BLE001 - no server answers: rendered as the route's
            return _LookupFailed(exc)
        if key is None or not key.active or not key.allows(WRITE_SCOPE):
            return None
        try:
            tx = transaction_to_store(key, payload, fx=services.fx, now=datetime.now(UTC))
        except HTTPException:
            return None
        if services.limiter.acquire(key.id):  # refused: no token was taken (429 from the route)
            return None
        return _Write(services, key, payload, tx, idempotency_key)

    async def _hand_over(
        self, scope: Scope, receive: Receive, send: Send, start: float, messages: list[Message]
    ) -> None:
        self.handed_over += 1
        scope[REQUEST_START] = start
        await self.app(scope, _replay(messages, receive) if messages else receive, send)


async def _read_body(receive: Receive, messages: list[Message]) -> bytes | None:
    """The whole body, every message kept in `messages`; None if the client went away."""
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return None
        if not message.get("more_body", False):
            break
    if len(messages) == 1:
        return messages[0].get("body", b"")
    return b"".join(m.get("body", b"") for m in messages)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """`receive` that first gives back the messages the fast path already read."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


async def _handled(scope: Scope, receive: Receive, exc: Exception) -> Any:
    """The response the app's exception handlers give for `exc` (what Starlette's
    `ExceptionMiddleware` does); an exception without a handler, or that its handler raises
    again, propagates (a 500 from `ServerErrorMiddleware`, as for the route)."""
    handlers = scope["app"].exception_handlers
    handler = None
    if isinstance(exc, StarletteHTTPException):
        handler = handlers.get(exc.status_code)
    if handler is None:
        handler = next((handlers[c] for c in type(exc).__mro__ if c in handlers), None)
    if handler is None:
        raise exc
    return await handler(Request(scope, receive), exc)
