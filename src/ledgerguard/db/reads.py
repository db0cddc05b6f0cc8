"""Where a read goes: the replica, unless it is down or cannot show the caller's write in time.

Shared by the API's routes and the web app (each passes its engines), so read-your-writes has
one implementation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ledgerguard.db.consistency import replica_has
from ledgerguard.db.dialect import Flavour


async def _open_replica(
    replica: AsyncEngine, flavour: Flavour, timeout_s: float, token: str | None
) -> AsyncConnection | None:
    """A replica connection that already shows `token` (waited for, bounded), else None."""
    try:
        conn = await replica.connect()
    except (SQLAlchemyError, OSError):
        return None
    try:
        if token is None or await replica_has(
            conn, flavour=flavour, gtid=token, timeout_s=timeout_s
        ):
            return conn
    except (SQLAlchemyError, OSError):
        pass
    await conn.close()
    return None


@asynccontextmanager
async def read_connection(
    *,
    replica: AsyncEngine,
    primary: AsyncEngine,
    flavour: Flavour,
    timeout_s: float,
    consistent_after: str | None,
) -> AsyncIterator[tuple[AsyncConnection, str]]:
    """Yield (connection, "replica" | "primary").

    With `consistent_after` (a commit's GTID), the replica is first given `timeout_s` seconds to
    apply it; the primary serves the read only when the replica is down or still behind after
    that, so reads stay off the primary in normal operation.
    """
    conn = await _open_replica(replica, flavour, timeout_s, consistent_after)
    source = "replica"
    if conn is None:
        conn = await primary.connect()
        source = "primary"
    try:
        yield conn, source
    finally:
        await conn.close()
