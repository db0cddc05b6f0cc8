"""Translate failures to HTTP at the edge: 4xx with a message naming the field, 503 for outages.

* Validation errors → 422 with `detail` (FastAPI's list: `loc`, `msg`, `type`) and a one-line
  `message` such as `body.amount: amount has 3 decimal places but USD allows at most 2`.
* A database that cannot be reached (connection refused, lost, timed out) → 503 with
  `Retry-After`, never 500: the client retries and the pool reconnects by itself.
"""

from __future__ import annotations

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from ledgerguard.db.write_errors import is_outage
from ledgerguard.errors import LedgerGuardError

RETRY_AFTER_SECONDS = "1"


def _describe(error: dict) -> str:
    loc = ".".join(str(part) for part in error.get("loc", ()))
    msg = str(error.get("msg", "invalid"))
    msg = msg.removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    for error in errors:
        error.pop("input", None)  # never echo the (possibly huge or sensitive) input back
        error.pop("ctx", None)
        error.pop("url", None)
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        content=jsonable_encoder(
            {"detail": errors, "message": "; ".join(_describe(e) for e in errors)}
        ),
    )


async def database_error(request: Request, exc: DBAPIError) -> JSONResponse:
    if is_outage(exc):
        await _look_for_primary(request)
        return unavailable()
    raise exc


async def os_error(request: Request, exc: OSError) -> JSONResponse:
    await _look_for_primary(request)
    return unavailable()


async def _look_for_primary(request: Request) -> None:
    """Any outage (a write, a key lookup, a read) may mean a failover: ask again who is primary."""
    services = getattr(request.app.state, "services", None)
    if services is not None:
        await services.topology.refresh()


def unavailable() -> JSONResponse:
    message = "the database is unavailable; retry shortly"
    return JSONResponse(
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        content={"detail": message, "message": message},
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Every HTTPException in the one error shape (`detail` and `message`, see `ErrorBody`).

    A 405 lists in `Allow` every method of the path, not only those of the first route that
    matched it (GET and POST /transactions are two routes).
    """
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        methods: set[str] = set()
        for route in request.app.router.routes:
            match, _ = route.matches({**request.scope, "method": "GET"})
            if match is not Match.NONE and getattr(route, "methods", None):
                methods |= set(route.methods) - {"HEAD"}
        if methods:
            headers["Allow"] = ", ".join(sorted(methods))
    return JSONResponse(
        status_code=exc.status_code,
        content={"detail": detail, "message": detail},
        headers=headers or None,
    )


async def library_error(request: Request, exc: LedgerGuardError) -> JSONResponse:
    return JSONResponse(
        status_code=status.HTTP_400_BAD_REQUEST, content={"detail": str(exc), "message": str(exc)}
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(DBAPIError, database_error)
    app.add_exception_handler(OSError, os_error)
    app.add_exception_handler(LedgerGuardError, library_error)
