"""Who is asking: session cookies, the login lockout, CSRF tokens, and role checks.

A session is a random token in an HttpOnly, SameSite=Strict cookie (Secure over TLS); the
database keeps its SHA-256 and the session's CSRF token, so logout and expiry are final and a
leaked table logs nobody in. Every form carries the CSRF token (htmx sends it as a header); a
request without the right one is refused with 403 before anything is read or written. The login
form, which has no session yet, uses a double-submit cookie instead.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response, status

from ledgerguard.db import audit
from ledgerguard.db.web_users import (
    WebSession,
    WebUser,
    end_session,
    find_session,
    find_user,
    record_failed_login,
    start_session,
)
from ledgerguard.settings import Settings
from ledgerguard.web.backend import Backend, WebBackend, on_primary
from ledgerguard.web.passwords import hash_password, needs_rehash, verify_password

SESSION_COOKIE = "lg_session"
LOGIN_CSRF_COOKIE = "lg_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


class LoginRequired(Exception):
    """No live session: HTML pages answer with a redirect to the login page."""


@dataclass(frozen=True)
class LoginOutcome:
    token: str | None
    message: str | None


def cookie_secure(settings: Settings, request: Request) -> bool:
    if settings.web_cookie_secure == "auto":
        return request.url.scheme == "https"
    return settings.web_cookie_secure == "always"


def set_cookie(
    response: Response, request: Request, settings: Settings, name: str, value: str, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=cookie_secure(settings, request),
        path="/",
    )


def new_token() -> str:
    return secrets.token_urlsafe(32)


def _login(
    sync, *, username: str, password: str, settings: Settings, now: datetime
) -> LoginOutcome:  # type: ignore[no-untyped-def]
    user = find_user(sync, username=username)
    refused = LoginOutcome(None, "wrong username or password")
    if user is None or user.disabled_at is not None:
        verify_password(None, password)
        audit.record(sync, actor=username, action="login_failed", target="unknown user", at=now)
        return refused
    if user.locked(now):
        audit.record(sync, actor=username, action="login_refused", target="locked", at=now)
        return LoginOutcome(
            None, "too many failed logins: this account is locked for a while, try again later"
        )
    if not verify_password(user.password_hash, password):
        locked = record_failed_login(
            sync,
            user=user,
            max_failures=settings.web_login_max_failures,
            lockout=timedelta(seconds=settings.web_lockout_seconds),
            now=now,
        )
        audit.record(
            sync,
            actor=username,
            action="login_failed",
            target=f"user:{user.id}",
            at=now,
            after={"locked": locked},
        )
        return refused
    token = new_token()
    start_session(
        sync,
        user=user,
        token=token,
        csrf_token=new_token(),
        now=now,
        lifetime=timedelta(minutes=settings.web_session_minutes),
        new_password_hash=hash_password(password) if needs_rehash(user.password_hash) else None,
    )
    audit.record(sync, actor=username, action="login", target=f"user:{user.id}", at=now)
    return LoginOutcome(token, None)


async def login(backend: Backend, *, username: str, password: str) -> LoginOutcome:
    """Check a password (lockout included), start a session, audit either way."""
    return await on_primary(
        backend,
        _login,
        username=username[:64],
        password=password,
        settings=backend.settings,
        now=datetime.now(UTC),
    )


def _logout(sync, *, token: str, session: WebSession, now: datetime) -> None:  # type: ignore[no-untyped-def]
    end_session(sync, token=token, now=now)
    audit.record(
        sync, actor=session.user.username, action="logout", target=f"user:{session.user.id}", at=now
    )


async def logout(backend: Backend, *, token: str, session: WebSession) -> None:
    await on_primary(backend, _logout, token=token, session=session, now=datetime.now(UTC))


async def current_session(request: Request, backend: WebBackend) -> WebSession:
    """The live session of the cookie (read on the primary: a logout is final at once)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise LoginRequired
    session = await on_primary(backend, find_session, token=token, now=datetime.now(UTC))
    if session is None:
        raise LoginRequired
    request.state.session = session
    return session


Session = Annotated[WebSession, Depends(current_session)]


async def current_user(session: Session) -> WebUser:
    return session.user


async def admin_user(session: Session) -> WebUser:
    if not session.user.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this page is for administrators")
    return session.user


CurrentUser = Annotated[WebUser, Depends(current_user)]
AdminUser = Annotated[WebUser, Depends(admin_user)]


async def checked_csrf(request: Request, session: Session) -> WebSession:
    """The session, if the request carries its CSRF token (form field or htmx header); else 403."""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent, session.csrf_token):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or invalid CSRF token")
    return session


CsrfSession = Annotated[WebSession, Depends(checked_csrf)]


async def checked_admin_csrf(session: CsrfSession) -> WebSession:
    if not session.user.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this page is for administrators")
    return session


AdminCsrfSession = Annotated[WebSession, Depends(checked_admin_csrf)]
