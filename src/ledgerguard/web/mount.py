"""Adds the web app, its static files and the offline API docs to the API's FastAPI app."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledgerguard.settings import Settings
from ledgerguard.web import apidocs
from ledgerguard.web.auth import LoginRequired
from ledgerguard.web.routes import admin, approvals, auth, cases, overview, parameters, queue
from ledgerguard.web.templating import STATIC, render
from ledgerguard.web.throttle import LoginThrottle

PREFIX = "/review"


async def _login_required(request: Request, exc: LoginRequired) -> Response:
    if request.headers.get("HX-Request"):
        return Response(status_code=401, headers={"HX-Redirect": f"{PREFIX}/login"})
    return RedirectResponse(f"{PREFIX}/login", status_code=303)


def _http_error(
    api_handler: Callable[..., Awaitable[Response]],
) -> Callable[..., Awaitable[Response]]:
    """An HTML page for the web app's refusals (403, 404, 409...); the API's own handler (its one
    JSON error shape) for everything else."""

    async def handle(request: Request, exc: StarletteHTTPException) -> Response:
        if not request.url.path.startswith(PREFIX):
            return await api_handler(request, exc)
        page = render(request, "error.html", status_code=exc.status_code, message=exc.detail)
        page.headers.update(exc.headers or {})
        return page

    return handle


def install(app: FastAPI, settings: Settings) -> None:
    """Call after the API's routes and error handlers: adds `/review`, `/static`, docs."""
    app.state.login_throttle = LoginThrottle(per_minute=settings.web_login_attempts_per_minute)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if settings.api_docs:  # off in production (see `Settings.api_docs`)
        apidocs.install(app)
    for module in (auth, queue, cases, approvals, overview, admin, parameters):
        app.include_router(module.router, prefix=PREFIX)
    app.add_exception_handler(LoginRequired, _login_required)  # type: ignore[arg-type]
    api_handler = app.exception_handlers.get(StarletteHTTPException, http_exception_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error(api_handler))
