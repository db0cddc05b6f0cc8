"""Adds the web app, its static files and the offline API docs to the API's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledgerguard.settings import Settings
from ledgerguard.web import apidocs
from ledgerguard.web.auth import LoginRequired
from ledgerguard.web.routes import admin, approvals, auth, cases, overview, queue
from ledgerguard.web.templating import STATIC, render
from ledgerguard.web.throttle import LoginThrottle

PREFIX = "/review"


async def _login_required(request: Request, exc: LoginRequired) -> Response:
    if request.headers.get("HX-Request"):
        return Response(status_code=401, headers={"HX-Redirect": f"{PREFIX}/login"})
    return RedirectResponse(f"{PREFIX}/login", status_code=303)


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """An HTML page for the web app's refusals (403, 404, 409...), JSON for the API's."""
    if not request.url.path.startswith(PREFIX):
        return await http_exception_handler(request, exc)
    page = render(request, "error.html", status_code=exc.status_code, message=exc.detail)
    page.headers.update(exc.headers or {})
    return page


def install(app: FastAPI, settings: Settings) -> None:
    """Call after the API's routes and error handlers: adds `/review`, `/static`, docs."""
    app.state.login_throttle = LoginThrottle(per_minute=settings.web_login_attempts_per_minute)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    apidocs.install(app)
    for module in (auth, queue, cases, approvals, overview, admin):
        app.include_router(module.router, prefix=PREFIX)
    app.add_exception_handler(LoginRequired, _login_required)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
