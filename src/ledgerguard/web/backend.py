"""What the web app needs from the process it runs in: settings and the two servers.

The API's lifespan builds one `ApiServices` per worker and stores it on `app.state.services`;
the web app reads the same object through this protocol (it does not import `ledgerguard.api`,
which imports it), so both share engines, the topology that follows a failover, and settings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Protocol, TypeVar

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ledgerguard.db.dialect import Flavour, last_gtid_query
from ledgerguard.db.reads import read_connection
from ledgerguard.settings import Settings

T = TypeVar("T")


class Backend(Protocol):
    settings: Settings

    @property
    def primary(self) -> AsyncEngine: ...

    @property
    def replica(self) -> AsyncEngine: ...

    @property
    def flavour(self) -> Flavour: ...


async def get_backend(request: Request) -> Backend:
    return request.app.state.services


WebBackend = Annotated[Backend, Depends(get_backend)]


async def on_primary(backend: Backend, work: Callable[..., T], **kwargs: Any) -> T:
    """Run a sync `db` function on the primary in one transaction (committed on return)."""
    async with backend.primary.begin() as conn:
        return await conn.run_sync(lambda sync: work(sync, **kwargs))


async def write_on_primary(
    backend: Backend, work: Callable[..., T], **kwargs: Any
) -> tuple[T, str | None]:
    """`on_primary` plus the GTID of the commit, the read-your-writes token for later reads."""
    async with backend.primary.connect() as conn:
        async with conn.begin():
            result = await conn.run_sync(lambda sync: work(sync, **kwargs))
        statement = last_gtid_query(backend.flavour)
        gtid = (await conn.exec_driver_sql(statement.sql)).scalar()
    return result, gtid or None


@asynccontextmanager
async def replica_read(
    backend: Backend, consistent_after: str | None = None
) -> AsyncIterator[AsyncConnection]:
    """A read connection: the replica, after `consistent_after` if given (bounded wait)."""
    async with read_connection(
        replica=backend.replica,
        primary=backend.primary,
        flavour=backend.flavour,
        timeout_s=backend.settings.read_your_writes_timeout,
        consistent_after=consistent_after,
    ) as (conn, _source):
        yield conn


async def on_replica(
    backend: Backend, work: Callable[..., T], consistent_after: str | None = None, **kwargs: Any
) -> T:
    async with replica_read(backend, consistent_after) as conn:
        return await conn.run_sync(lambda sync: work(sync, **kwargs))
