"""Where an API read goes: `ledgerguard.db.reads` with this worker's engines."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection

from ledgerguard.api.services import ApiServices
from ledgerguard.db import reads


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
