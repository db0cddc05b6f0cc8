"""`/review/admin/...`: accounts, API keys and the audit trail (administrators only)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Form, HTTPException, Path, Query, Request, status
from fastapi.responses import Response

from ledgerguard.apikeys import ApiKeyError, parse_scopes
from ledgerguard.db import audit
from ledgerguard.db.api_keys import create_api_key, list_api_keys, revoke_api_key
from ledgerguard.db.web_users import ROLES, UserError, create_user, list_users, set_disabled
from ledgerguard.web.auth import AdminCsrfSession, AdminUser
from ledgerguard.web.backend import WebBackend, on_primary
from ledgerguard.web.passwords import hash_password
from ledgerguard.web.templating import render

router = APIRouter(prefix="/admin", tags=["web"], include_in_schema=False)


# --- audit trail ----------------------------------------------------------------------------


@router.get("/audit")
async def audit_page(
    request: Request,
    backend: WebBackend,
    user: AdminUser,
    actor: Annotated[str, Query(max_length=64)] = "",
    action: Annotated[str, Query(max_length=32)] = "",
    target: Annotated[str, Query(max_length=128)] = "",
    before_id: Annotated[int | None, Query(gt=0)] = None,
) -> Response:
    # the primary: an auditor wants the row that was just written, and pages are small
    entries = await on_primary(
        backend, audit.browse, actor=actor, action=action, target=target, before_id=before_id
    )
    return render(
        request,
        "audit.html",
        entries=entries,
        actor=actor,
        action=action,
        target=target,
        next_before=entries[-1].id if len(entries) == audit.PAGE_SIZE else None,
    )


# --- accounts -------------------------------------------------------------------------------


async def _users_page(
    request: Request, backend: WebBackend, message: str | None = None, code: int = 200
) -> Response:
    users = await on_primary(backend, list_users)
    return render(
        request,
        "users.html",
        status_code=code,
        users=users,
        roles=ROLES,
        message=message,
        now=datetime.now(UTC),
    )


@router.get("/users")
async def users_page(request: Request, backend: WebBackend, user: AdminUser) -> Response:
    return await _users_page(request, backend)


def _create_user(
    sync, *, actor: str, username: str, password_hash: str, role: str, now: datetime
) -> None:  # type: ignore[no-untyped-def]
    created = create_user(sync, username=username, password_hash=password_hash, role=role, now=now)
    audit.record(
        sync,
        actor=actor,
        action="user_create",
        target=f"user:{created.id}",
        at=now,
        after={"username": username, "role": role},
    )


@router.post("/users")
async def add_user(
    request: Request,
    backend: WebBackend,
    session: AdminCsrfSession,
    username: Annotated[str, Form(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")],
    password: Annotated[str, Form(max_length=1024)],
    role: Annotated[str, Form(pattern=r"^(analyst|admin)$")],
) -> Response:
    try:
        password_hash = hash_password(password)
        await on_primary(
            backend,
            _create_user,
            actor=session.user.username,
            username=username,
            password_hash=password_hash,
            role=role,
            now=datetime.now(UTC),
        )
    except (ValueError, UserError) as exc:
        return await _users_page(request, backend, str(exc), status.HTTP_400_BAD_REQUEST)
    return await _users_page(request, backend, f"created {role} {username}")


def _disable(sync, *, actor: str, user_id: int, disable: bool, now: datetime) -> None:  # type: ignore[no-untyped-def]
    set_disabled(sync, user_id=user_id, disabled_at=now if disable else None)
    audit.record(
        sync,
        actor=actor,
        action="user_disable" if disable else "user_enable",
        target=f"user:{user_id}",
        at=now,
        after={"disabled": disable},
    )


@router.post("/users/{user_id}/{change}")
async def disable_user(
    request: Request,
    backend: WebBackend,
    session: AdminCsrfSession,
    user_id: Annotated[int, Path(gt=0)],
    change: Annotated[str, Path(pattern=r"^(disable|enable)$")],
) -> Response:
    if user_id == session.user.id:
        raise HTTPException(status.HTTP_409_CONFLICT, "you cannot disable your own account")
    await on_primary(
        backend,
        _disable,
        actor=session.user.username,
        user_id=user_id,
        disable=change == "disable",
        now=datetime.now(UTC),
    )
    return await _users_page(request, backend, f"user {user_id}: {change}d")


# --- API keys -------------------------------------------------------------------------------


async def _keys_page(
    request: Request,
    backend: WebBackend,
    message: str | None = None,
    plain: str | None = None,
    code: int = 200,
) -> Response:
    keys = await on_primary(backend, list_api_keys)
    return render(request, "keys.html", status_code=code, keys=keys, message=message, plain=plain)


@router.get("/keys")
async def keys_page(request: Request, backend: WebBackend, user: AdminUser) -> Response:
    return await _keys_page(request, backend)


def _create_key(
    sync: sa.Connection,
    *,
    actor: str,
    name: str,
    scopes: tuple[str, ...],
    merchant_id: int | None,
    now: datetime,
) -> str:
    record, plain = create_api_key(sync, name=name, scopes=scopes, merchant_id=merchant_id)
    audit.record(
        sync,
        actor=actor,
        action="key_create",
        target=f"apikey:{record.prefix}",
        at=now,
        after={"name": name, "scopes": list(scopes), "merchant_id": merchant_id},
    )
    return plain


@router.post("/keys")
async def add_key(
    request: Request,
    backend: WebBackend,
    session: AdminCsrfSession,
    name: Annotated[str, Form(min_length=1, max_length=100)],
    scopes: Annotated[list[str], Form()],
    merchant_id: Annotated[int | None, Form(ge=1, le=2**53 - 1)] = None,
) -> Response:
    try:
        plain = await on_primary(
            backend,
            _create_key,
            actor=session.user.username,
            name=name,
            scopes=parse_scopes(scopes),
            merchant_id=merchant_id,
            now=datetime.now(UTC),
        )
    except ApiKeyError as exc:
        return await _keys_page(request, backend, str(exc), code=status.HTTP_400_BAD_REQUEST)
    return await _keys_page(request, backend, f"created key {name}; copy it now", plain=plain)


def _revoke_key(sync: sa.Connection, *, actor: str, prefix: str, now: datetime) -> str:
    record = revoke_api_key(sync, name_or_prefix=prefix)
    audit.record(
        sync,
        actor=actor,
        action="key_revoke",
        target=f"apikey:{record.prefix}",
        at=now,
        before={"revoked": False},
        after={"revoked": True},
    )
    return record.name


@router.post("/keys/{prefix}/revoke")
async def revoke_key(
    request: Request,
    backend: WebBackend,
    session: AdminCsrfSession,
    prefix: Annotated[str, Path(pattern=r"^[0-9a-f]{12}$")],
) -> Response:
    try:
        name = await on_primary(
            backend, _revoke_key, actor=session.user.username, prefix=prefix, now=datetime.now(UTC)
        )
    except ApiKeyError as exc:
        return await _keys_page(request, backend, str(exc), code=status.HTTP_404_NOT_FOUND)
    return await _keys_page(request, backend, f"revoked {name}")
