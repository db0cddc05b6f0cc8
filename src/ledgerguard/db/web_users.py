"""SQL for the analyst app's people: accounts, the login lockout, server-side sessions.

Functions take a sync `Connection`: the CLI calls them directly, the web app through
`AsyncConnection.run_sync`, so each statement exists once. Hashing passwords is the caller's job
(`ledgerguard.web.passwords`); nothing here sees a plain password.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ledgerguard.db.tables import web_sessions, web_users
from ledgerguard.errors import LedgerGuardError

ROLES = ("analyst", "admin")


class UserError(LedgerGuardError):
    """An account request that cannot be done (duplicate name, unknown role...)."""


@dataclass(frozen=True)
class WebUser:
    id: int
    username: str
    role: str
    password_hash: str
    created_at: datetime
    disabled_at: datetime | None
    failed_logins: int
    locked_until: datetime | None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now


@dataclass(frozen=True)
class WebSession:
    user: WebUser
    csrf_token: str
    expires_at: datetime


def _user(row: sa.Row) -> WebUser:
    return WebUser(
        id=row.id,
        username=row.username,
        role=row.role,
        password_hash=row.password_hash,
        created_at=row.created_at,
        disabled_at=row.disabled_at,
        failed_logins=row.failed_logins,
        locked_until=row.locked_until,
    )


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(
    conn: sa.Connection, *, username: str, password_hash: str, role: str, now: datetime
) -> WebUser:
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; choose from {', '.join(ROLES)}")
    try:
        result = conn.execute(
            sa.insert(web_users).values(
                username=username,
                password_hash=password_hash,
                role=role,
                created_at=now,
                failed_logins=0,
            )
        )
    except IntegrityError as exc:
        raise UserError(f"a user named {username!r} already exists") from exc
    return find_user(conn, user_id=int(result.inserted_primary_key[0]))  # type: ignore[return-value]


def find_user(
    conn: sa.Connection, *, user_id: int | None = None, username: str | None = None
) -> WebUser | None:
    where = web_users.c.id == user_id if user_id is not None else web_users.c.username == username
    row = conn.execute(sa.select(web_users).where(where)).first()
    return None if row is None else _user(row)


def list_users(conn: sa.Connection) -> list[WebUser]:
    return [_user(row) for row in conn.execute(sa.select(web_users).order_by(web_users.c.id))]


def usernames(conn: sa.Connection, ids: set[int]) -> dict[int, str]:
    """Names of the given user ids (for pages that show who claimed or decided)."""
    if not ids:
        return {}
    rows = conn.execute(
        sa.select(web_users.c.id, web_users.c.username).where(web_users.c.id.in_(ids))
    )
    return {row.id: row.username for row in rows}


def set_disabled(conn: sa.Connection, *, user_id: int, disabled_at: datetime | None) -> None:
    conn.execute(
        sa.update(web_users).where(web_users.c.id == user_id).values(disabled_at=disabled_at)
    )
    if disabled_at is not None:
        end_sessions(conn, user_id=user_id, now=disabled_at)


def record_failed_login(
    conn: sa.Connection, *, user: WebUser, max_failures: int, lockout: timedelta, now: datetime
) -> bool:
    """Count a failed password; at `max_failures` in a row the account locks. True if it did."""
    failures = user.failed_logins + 1
    locked = failures >= max_failures
    conn.execute(
        sa.update(web_users)
        .where(web_users.c.id == user.id)
        .values(
            failed_logins=0 if locked else failures,
            locked_until=now + lockout if locked else user.locked_until,
        )
    )
    return locked


def start_session(
    conn: sa.Connection,
    *,
    user: WebUser,
    token: str,
    csrf_token: str,
    now: datetime,
    lifetime: timedelta,
    new_password_hash: str | None = None,
) -> None:
    """A successful login: reset the failure count and store the session (token hashed)."""
    values: dict[str, object] = {"failed_logins": 0, "locked_until": None}
    if new_password_hash is not None:  # Argon2 parameters changed since the hash was made
        values["password_hash"] = new_password_hash
    conn.execute(sa.update(web_users).where(web_users.c.id == user.id).values(**values))
    conn.execute(
        sa.insert(web_sessions).values(
            token_hash=token_hash(token),
            user_id=user.id,
            csrf_token=csrf_token,
            created_at=now,
            expires_at=now + lifetime,
        )
    )


def find_session(conn: sa.Connection, *, token: str, now: datetime) -> WebSession | None:
    """The live session of a cookie token: not ended, not expired, its user not disabled."""
    row = conn.execute(
        sa.select(web_sessions.c.csrf_token, web_sessions.c.expires_at, web_users)
        .join(web_users, web_users.c.id == web_sessions.c.user_id)
        .where(
            web_sessions.c.token_hash == token_hash(token),
            web_sessions.c.ended_at.is_(None),
            web_sessions.c.expires_at > now,
            web_users.c.disabled_at.is_(None),
        )
    ).first()
    if row is None:
        return None
    return WebSession(user=_user(row), csrf_token=row.csrf_token, expires_at=row.expires_at)


def end_session(conn: sa.Connection, *, token: str, now: datetime) -> None:
    conn.execute(
        sa.update(web_sessions)
        .where(web_sessions.c.token_hash == token_hash(token), web_sessions.c.ended_at.is_(None))
        .values(ended_at=now)
    )


def end_sessions(conn: sa.Connection, *, user_id: int, now: datetime) -> None:
    conn.execute(
        sa.update(web_sessions)
        .where(web_sessions.c.user_id == user_id, web_sessions.c.ended_at.is_(None))
        .values(ended_at=now)
    )
