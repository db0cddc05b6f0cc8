"""Which configured server takes writes: the recorded topology, so the API follows a failover.

Both servers of the cluster are configured (`LEDGERGUARD_PRIMARY_*`, `LEDGERGUARD_REPLICA_*`);
which one is the primary is what `ledgerguard cluster failover` recorded, with an epoch it
increments (`ledgerguard.db.topology`). The record is read at start-up and again whenever a
request fails with an outage (debounced), so after a failover the first failed writes answer 503
and the following ones go to the promoted server, with no restart and no configuration change.

Never by node order, never "whichever answers writable": an old primary that was stalled
(SIGSTOP) and comes back still writable is not chosen, because the record names the other
server. The recorded primary is also asked for its flavour (bounded by `check_timeout`, so a
stalled server cannot hold the lock).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ledgerguard.db.dialect import VERSION_QUERY, Flavour, detect_flavour
from ledgerguard.db.engines import primary_engine, replica_engine
from ledgerguard.db.topology import RecordedTopology, load_topology
from ledgerguard.settings import Settings


@dataclass
class Node:
    name: str
    writer: AsyncEngine  # API account
    reader: AsyncEngine  # read-only analytics account


class Topology:
    def __init__(
        self,
        nodes: list[Node],
        *,
        settings: Settings,
        min_interval: float = 0.5,
        check_timeout: float = 2.0,
    ) -> None:
        self.nodes = nodes
        self.settings = settings
        self.min_interval = min_interval
        self.check_timeout = check_timeout
        self.flavour = Flavour.MARIADB
        self.recorded = RecordedTopology()
        self._primary = 0
        self._checked = float("-inf")
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> Topology:
        size = settings.api_pool_size
        return cls(
            [
                Node(
                    node,
                    primary_engine(settings, pool_size=size, node=node),
                    replica_engine(settings, pool_size=size, node=node),
                )
                for node in ("primary", "replica")
            ],
            settings=settings,
        )

    @property
    def epoch(self) -> int:
        """The failover epoch this worker follows."""
        return self.recorded.epoch

    @property
    def primary(self) -> AsyncEngine:
        """Engine (API account) of the server that currently takes writes."""
        return self.nodes[self._primary].writer

    @property
    def replica(self) -> AsyncEngine:
        """Engine (read-only account) of the other server."""
        return self.nodes[1 - self._primary].reader

    @property
    def primary_name(self) -> str:
        return self.nodes[self._primary].name

    async def refresh(self) -> None:
        """Follow the recorded topology (at most every `min_interval` seconds)."""
        async with self._lock:
            if time.monotonic() - self._checked < self.min_interval:
                return
            self._checked = time.monotonic()
            self.recorded = load_topology(self.settings)
            self._primary = 1 if self.recorded.swapped else 0
            # unreachable now: writes answer 503 until it is back or failed over
            with contextlib.suppress(TimeoutError, sa.exc.SQLAlchemyError, OSError):
                self.flavour = await asyncio.wait_for(self._ask_flavour(), self.check_timeout)

    async def _ask_flavour(self) -> Flavour:
        async with self.primary.connect() as conn:
            version = (await conn.exec_driver_sql(VERSION_QUERY.sql)).scalar_one()
        return detect_flavour(version)

    async def dispose(self) -> None:
        for node in self.nodes:
            await node.writer.dispose()
            await node.reader.dispose()
