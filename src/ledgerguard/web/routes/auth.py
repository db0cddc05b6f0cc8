"""`/review/login`, `/review/logout`: people sign in with an account, not an API key."""

from __future__ import annotations

import hmac
import math
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import RedirectResponse, Response

from ledgerguard.web import auth
from ledgerguard.web.backend import WebBackend
from ledgerguard.web.templating import render

router = APIRouter(tags=["web"], include_in_schema=False)


@router.get("")
async def home() -> RedirectResponse:
    return RedirectResponse("/review/queue", status_code=303)


def _login_page(request: Request, backend: WebBackend, message: str | None, code: int) -> Response:
    token = auth.new_token()
    response = render(request, "login.html", status_code=code, login_csrf=token, message=message)
    auth.set_cookie(response, request, backend.settings, auth.LOGIN_CSRF_COOKIE, token, 3600)
    return response


@router.get("/login")
async def login_form(request: Request, backend: WebBackend) -> Response:
    return _login_page(request, backend, None, 200)


@router.post("/login")
async def login(
    request: Request,
    backend: WebBackend,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    expected = request.cookies.get(auth.LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, csrf_token):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or invalid CSRF token")
    client = request.client.host if request.client else "unknown"
    wait = request.app.state.login_throttle.wait(client)
    if wait:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "too many login attempts from this address; wait a minute",
            headers={"Retry-After": str(math.ceil(wait))},
        )
    outcome = await auth.login(backend, username=username, password=password)
    if outcome.token is None:
        return _login_page(request, backend, outcome.message, status.HTTP_401_UNAUTHORIZED)
    response = RedirectResponse("/review/queue", status_code=303)
    auth.set_cookie(
        response,
        request,
        backend.settings,
        auth.SESSION_COOKIE,
        outcome.token,
        backend.settings.web_session_minutes * 60,
    )
    response.delete_cookie(auth.LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/logout")
async def logout(request: Request, backend: WebBackend, session: auth.CsrfSession) -> Response:
    await auth.logout(backend, token=request.cookies[auth.SESSION_COOKIE], session=session)
    response = RedirectResponse("/review/login", status_code=303)
    response.delete_cookie(auth.SESSION_COOKIE, path="/")
    return response
