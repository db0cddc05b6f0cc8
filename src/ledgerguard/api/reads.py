"""Where an API read goes: `ledgerguard.db.reads` with this worker's engines."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from ledgerguard.api.services import ApiServices
from ledgerguard.db import reads
from ledgerguard.db.consistency import position_covers, primary_position


class FutureToken(ValueError):
    """A `consistent_after` GTID the primary has not written: no replica will ever show it."""


async def check_token_not_future(services: ApiServices, token: str) -> None:
    """Refuse a token beyond the primary's position before it holds a replica connection.

    The primary's position is cached per worker (`services.primary_position`); it is read again
    only when a token is beyond the cached one, so honest tokens cost no query at all once the
    cache has passed them, and a forged future one costs one cheap query. Both flavours: a
    MariaDB position and a MySQL GTID set are compared by `GtidSet` (`position_covers`); after a
    failover the new primary's set holds the old primary's transactions too, so honest tokens
    issued before it still pass.
    """
    try:
        if position_covers(services.primary_position, token):
            return
        async with services.primary.connect() as conn:
            services.primary_position = await primary_position(conn, services.flavour)
        if position_covers(services.primary_position, token):
            return
    except (SQLAlchemyError, OSError):
        return  # the primary cannot say: fall back to the bounded wait
    raise FutureToken(
        "consistent_after names a transaction the primary has not committed; use the value "
        "a POST /transactions returned"
    )


@asynccontextmanager
async def read_connection(
    services: ApiServices, *, consistent_after: str | None
) -> AsyncIterator[tuple[AsyncConnection, str]]:
    """Yield (connection, "replica" | "primary"); see `ledgerguard.db.reads.read_connection`."""
    async with reads.read_connection(
        replica=services.replica,
        primary=services.primary,
        flavour=services.flavour,
        timeout_s=services.settings.read_your_writes_timeout,
        consistent_after=consistent_after,
    ) as pair:
        yield pair
