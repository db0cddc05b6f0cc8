"""Which configured server takes writes: found by asking, so the API follows a failover.

Both servers of the cluster are configured (`LEDGERGUARD_PRIMARY_*`, `LEDGERGUARD_REPLICA_*`).
The writable one (`@@read_only = 0`) is the primary; the other serves reads. The answer is
looked up at start-up and again whenever a write fails with an outage (debounced), so after
`ledgerguard cluster failover` the first failed writes answer 503 and the following ones go to
the promoted server, with no restart and no configuration change.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ledgerguard.db.dialect import Flavour, detect_flavour
from ledgerguard.db.engines import primary_engine, replica_engine
from ledgerguard.settings import Settings


@dataclass
class Node:
    name: str
    writer: AsyncEngine  # API account
    reader: AsyncEngine  # read-only analytics account


class Topology:
    def __init__(self, nodes: list[Node], *, min_interval: float = 0.5) -> None:
        self.nodes = nodes
        self.min_interval = min_interval
        self.flavour = Flavour.MARIADB
        self._primary = 0
        self._checked = float("-inf")
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> Topology:
        size = settings.api_pool_size
        return cls(
            [
                Node(
                    "primary",
                    primary_engine(settings, pool_size=size, server="primary"),
                    replica_engine(settings, pool_size=size, server="primary"),
                ),
                Node(
                    "replica",
                    primary_engine(settings, pool_size=size, server="replica"),
                    replica_engine(settings, pool_size=size, server="replica"),
                ),
            ]
        )

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
        """Ask the servers which one is writable (at most every `min_interval` seconds)."""
        async with self._lock:
            if time.monotonic() - self._checked < self.min_interval:
                return
            self._checked = time.monotonic()
            for index, node in enumerate(self.nodes):
                try:
                    async with node.writer.connect() as conn:
                        row = (
                            await conn.execute(sa.text("SELECT @@GLOBAL.read_only, VERSION()"))
                        ).one()
                except (sa.exc.SQLAlchemyError, OSError):
                    continue
                if not row[0]:
                    self._primary = index
                    self.flavour = detect_flavour(row[1])
                    return

    async def dispose(self) -> None:
        for node in self.nodes:
            await node.writer.dispose()
            await node.reader.dispose()
