"""SQL for `api_keys`: create, list, revoke (admin CLI) and lookup by prefix (API)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from ledgerguard.apikeys import ApiKeyError, ApiKeyRecord, key_hash, new_key
from ledgerguard.db.tables import api_keys


def _record(row: Any) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        key_hash=row.key_hash,
        scopes=tuple(row.scopes.split()),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        merchant_id=row.merchant_id,
    )


def create_api_key(
    conn: sa.Connection,
    *,
    name: str,
    scopes: tuple[str, ...],
    merchant_id: int | None = None,
) -> tuple[ApiKeyRecord, str]:
    """Store a new key; returns the record and the plain key (shown once, never stored).

    `merchant_id` limits the key to that merchant's transactions (see `ApiKeyRecord`)."""
    plain, prefix = new_key()
    now = datetime.now(UTC)
    try:
        result = conn.execute(
            sa.insert(api_keys).values(
                name=name,
                prefix=prefix,
                key_hash=key_hash(plain),
                scopes=" ".join(scopes),
                created_at=now,
                merchant_id=merchant_id,
            )
        )
    except IntegrityError as exc:
        raise ApiKeyError(f"an API key named {name!r} already exists") from exc
    record = ApiKeyRecord(
        id=int(result.inserted_primary_key[0]),
        name=name,
        prefix=prefix,
        key_hash=key_hash(plain),
        scopes=scopes,
        created_at=now,
        revoked_at=None,
        merchant_id=merchant_id,
    )
    return record, plain


def list_api_keys(conn: sa.Connection) -> list[ApiKeyRecord]:
    rows = conn.execute(sa.select(api_keys).order_by(api_keys.c.id))
    return [_record(row) for row in rows]


def revoke_api_key(conn: sa.Connection, *, name_or_prefix: str) -> ApiKeyRecord:
    """Mark a key revoked (kept for audit); `ApiKeyError` if no such key, or if the argument is
    one key's name and another key's prefix (revoking either could lock out the wrong client)."""
    match = sa.or_(api_keys.c.name == name_or_prefix, api_keys.c.prefix == name_or_prefix)
    rows = conn.execute(sa.select(api_keys).where(match).limit(2)).all()
    if not rows:
        raise ApiKeyError(f"no API key named or prefixed {name_or_prefix!r}")
    if len(rows) > 1:
        names = ", ".join(f"{r.name} (prefix {r.prefix})" for r in rows)
        raise ApiKeyError(
            f"{name_or_prefix!r} is ambiguous: it matches {names}; revoke by the other key's "
            "prefix, or rename"
        )
    (row,) = rows
    if row.revoked_at is None:
        conn.execute(
            sa.update(api_keys).where(api_keys.c.id == row.id).values(revoked_at=datetime.now(UTC))
        )
    return _record(conn.execute(sa.select(api_keys).where(api_keys.c.id == row.id)).one())


async def find_api_keys(
    conn: AsyncConnection, *, prefixes: Collection[str]
) -> dict[str, ApiKeyRecord]:
    """The stored keys with these prefixes, by prefix (one query for all; a prefix with no key
    is absent). The API's key cache refreshes every cached key this way at once."""
    rows = await conn.execute(sa.select(api_keys).where(api_keys.c.prefix.in_(prefixes)))
    return {row.prefix: _record(row) for row in rows}


def find_api_key_sync(conn: sa.Connection, *, plain: str) -> ApiKeyRecord | None:
    """The stored record matching a plain key (admin tools), or None."""
    from ledgerguard.apikeys import prefix_of

    prefix = prefix_of(plain)
    if prefix is None:
        return None
    row = conn.execute(sa.select(api_keys).where(api_keys.c.prefix == prefix)).first()
    record = None if row is None else _record(row)
    return record if record is not None and record.matches(plain) else None
