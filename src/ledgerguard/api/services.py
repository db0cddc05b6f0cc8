"""What one API worker holds for its lifetime: engines, the writer, rates, metrics, caches.

Built by the app factory's lifespan and stored on `app.state.services`; routes get it through
the `Services` dependency, so tests build their own app with their own settings and nothing lives
in module globals.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from ledgerguard.api.metrics import ApiMetrics
from ledgerguard.api.ratelimit import RateLimiter
from ledgerguard.api.topology import Topology
from ledgerguard.apikeys import ApiKeyRecord
from ledgerguard.db.api_keys import find_api_key
from ledgerguard.db.dialect import Flavour
from ledgerguard.db.writer import TransactionWriter
from ledgerguard.money import FxRates
from ledgerguard.settings import Settings


@dataclass
class KeyCache:
    """API keys by prefix, refreshed from the primary every `ttl` seconds.

    Authentication must not cost a query per request; a revocation therefore takes effect within
    `ttl` seconds (5 by default). While the primary cannot be asked (a failover), a known key's
    last answer stays valid, so clients are not locked out by their own credentials. Unknown prefixes are cached too, so a flood of bad keys does not
    become a flood of queries; the cache is bounded.
    """

    engine: Callable[[], AsyncEngine]
    ttl: float = 5.0
    max_entries: int = 10_000
    _entries: dict[str, tuple[float, ApiKeyRecord | None]] = field(default_factory=dict)

    async def get(self, prefix: str) -> ApiKeyRecord | None:
        now = time.monotonic()
        hit = self._entries.get(prefix)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        try:
            async with self.engine().connect() as conn:
                record = await find_api_key(conn, prefix=prefix)
        except Exception:
            if hit is not None:  # the primary is away (failover): the last answer stands
                return hit[1]
            raise
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[prefix] = (now, record)
        return record


@dataclass
class ApiServices:
    settings: Settings
    topology: Topology
    writer: TransactionWriter
    fx: FxRates
    metrics: ApiMetrics
    limiter: RateLimiter
    keys: KeyCache

    @property
    def primary(self) -> AsyncEngine:
        """The server taking writes right now (API account)."""
        return self.topology.primary

    @property
    def replica(self) -> AsyncEngine:
        """The other server (read-only account)."""
        return self.topology.replica

    @property
    def flavour(self) -> Flavour:
        return self.topology.flavour
