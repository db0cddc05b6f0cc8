"""What one API worker holds for its lifetime: engines, the writer, rates, metrics, caches.

Built by the app factory's lifespan and stored on `app.state.services`; routes get it through
the `Services` dependency, so tests build their own app with their own settings and nothing lives
in module globals.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Generic, TypeVar

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from ledgerguard.api.metrics import ApiMetrics
from ledgerguard.api.ratelimit import RateLimiter
from ledgerguard.api.schemas import Readiness
from ledgerguard.api.shared_ratelimit import SharedRateLimiter
from ledgerguard.api.topology import Topology
from ledgerguard.apikeys import ApiKeyRecord
from ledgerguard.db.api_keys import find_api_key
from ledgerguard.db.dialect import Flavour
from ledgerguard.db.writer import TransactionWriter
from ledgerguard.money import FxRates
from ledgerguard.settings import Settings

T = TypeVar("T")


@dataclass
class KeyCache:
    """API keys by prefix, refreshed every `ttl` seconds; least recently used evicted first.

    Authentication must not cost a query per request; a revocation therefore takes effect within
    `ttl` seconds (5 by default). Each lookup asks the primary, bounded by `lookup_timeout` (a
    stalled primary must not hold requests), then the replica, which has the revocation too once
    it replicated; only when neither answers does a known key's last answer stand, so clients are
    not locked out by their own credentials during a failover. Unknown prefixes are cached too,
    so a flood of bad keys does not become a flood of queries; the cache keeps the `max_entries`
    most recently used prefixes, so such a flood cannot push the valid keys out all at once.
    """

    engine: Callable[[], AsyncEngine]
    replica: Callable[[], AsyncEngine] | None = None
    ttl: float = 5.0
    max_entries: int = 10_000
    lookup_timeout: float = 2.0
    _entries: OrderedDict[str, tuple[float, ApiKeyRecord | None]] = field(
        default_factory=OrderedDict
    )

    async def get(self, prefix: str) -> ApiKeyRecord | None:
        now = time.monotonic()
        hit = self._entries.get(prefix)
        if hit is not None:
            self._entries.move_to_end(prefix)
            if now - hit[0] < self.ttl:
                return hit[1]
        try:
            record = await self._lookup(prefix)
        except Exception:
            if hit is not None:  # no server answers (failover): the last answer stands
                return hit[1]
            raise
        self._entries[prefix] = (now, record)
        self._entries.move_to_end(prefix)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return record

    async def _lookup(self, prefix: str) -> ApiKeyRecord | None:
        sources = [self.engine] if self.replica is None else [self.engine, self.replica]
        for index, source in enumerate(sources):
            try:
                async with asyncio.timeout(self.lookup_timeout):  # no extra task per lookup
                    return await self._find(source(), prefix)
            except (TimeoutError, SQLAlchemyError, OSError):
                if index == len(sources) - 1:
                    raise
        raise AssertionError("unreachable")

    @staticmethod
    async def _find(engine: AsyncEngine, prefix: str) -> ApiKeyRecord | None:
        async with engine.connect() as conn:
            return await find_api_key(conn, prefix=prefix)


@dataclass
class CachedCheck(Generic[T]):
    """One result shared for `ttl` seconds; concurrent callers wait for the same computation.

    For checks any unauthenticated caller can trigger (`/ready`): a flood costs one check per
    `ttl`, not one per request.
    """

    ttl: float = 1.0
    computed: int = 0  # how many times the check really ran (tests)
    _value: T | None = None
    _at: float = float("-inf")
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def get(self, compute: Callable[[], Awaitable[T]]) -> T:
        if self._value is not None and time.monotonic() - self._at < self.ttl:
            return self._value
        async with self._lock:
            if self._value is None or time.monotonic() - self._at >= self.ttl:
                self._value = await compute()
                self._at = time.monotonic()
                self.computed += 1
            return self._value


@dataclass
class ApiServices:
    settings: Settings
    topology: Topology
    writer: TransactionWriter
    fx: FxRates
    metrics: ApiMetrics
    limiter: SharedRateLimiter
    keys: KeyCache
    #: failed authentications per client address (see `ledgerguard.api.deps.current_key`)
    address_limiter: RateLimiter = field(default_factory=lambda: RateLimiter(rate_per_second=0))
    #: last known GTID position of the primary (see `ledgerguard.api.reads`)
    primary_position: str | None = None
    readiness: CachedCheck[Readiness] = field(default_factory=CachedCheck)

    @cached_property
    def metrics_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """Where `/metrics` may be read without a key (`LEDGERGUARD_METRICS_ALLOW_FROM`)."""
        return tuple(
            ipaddress.ip_network(part.strip(), strict=False)
            for part in self.settings.metrics_allow_from.split(",")
            if part.strip()
        )

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
