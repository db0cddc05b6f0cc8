"""Where a read goes: the replica, unless it is down or cannot show the caller's write in time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from ledgerguard.api.services import ApiServices
from ledgerguard.db.consistency import replica_has


async def _open_replica(services: ApiServices, token: str | None) -> AsyncConnection | None:
    """A replica connection that already shows `token` (waited for, bounded), else None."""
    try:
        conn = await services.replica.connect()
    except (SQLAlchemyError, OSError):
        return None
    try:
        if token is None or await replica_has(
            conn,
            flavour=services.flavour,
            gtid=token,
            timeout_s=services.settings.read_your_writes_timeout,
        ):
            return conn
    except (SQLAlchemyError, OSError):
        pass
    await conn.close()
    return None


@asynccontextmanager
async def read_connection(
    services: ApiServices, *, consistent_after: str | None
) -> AsyncIterator[tuple[AsyncConnection, str]]:
    """Yield (connection, "replica" | "primary").

    With `consistent_after` (the GTID a POST returned), the replica is first given
    `read_your_writes_timeout` seconds to apply it; the primary serves the read only when the
    replica is down or still behind after that, so reads stay off the primary in normal operation.
    """
    conn = await _open_replica(services, consistent_after)
    source = "replica"
    if conn is None:
        conn = await services.primary.connect()
        source = "primary"
    try:
        yield conn, source
    finally:
        await conn.close()
