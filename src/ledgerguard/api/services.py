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
from ledgerguard.db.api_keys import find_api_keys
from ledgerguard.db.dialect import Flavour
from ledgerguard.db.writer import TransactionWriter
from ledgerguard.money import FxRates
from ledgerguard.settings import Settings

T = TypeVar("T")


_Entry = tuple[float, ApiKeyRecord | None]


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

    Refreshes are batched: when a known key's entry expires, the same query (`prefix IN (...)`)
    also refreshes every other known key whose entry is at least `ttl / 2` old (at most
    `batch_size`), so a worker using many keys asks about once per `ttl / 2`, not once per key
    per `ttl` (a query costs the worker far more CPU than a longer IN list). Unknown prefixes
    are only looked up again when presented again. Concurrent callers for a prefix whose lookup
    is under way wait for that lookup (one query, not one per request); the lookup runs in a
    task of its own, so a caller that goes away does not cancel it for the others.
    """

    engine: Callable[[], AsyncEngine]
    replica: Callable[[], AsyncEngine] | None = None
    ttl: float = 5.0
    max_entries: int = 10_000
    lookup_timeout: float = 2.0
    batch_size: int = 1_000
    _entries: OrderedDict[str, _Entry] = field(default_factory=OrderedDict)
    #: lookups under way, by every prefix they ask for
    _pending: dict[str, asyncio.Task[dict[str, ApiKeyRecord]]] = field(default_factory=dict)

    async def get(self, prefix: str) -> ApiKeyRecord | None:
        """The key with this prefix (active or revoked), or None; raises only when no server
        answers and the prefix is not cached."""
        hit = self._entries.get(prefix)
        if hit is not None:
            self._entries.move_to_end(prefix)
            if time.monotonic() - hit[0] < self.ttl:
                return hit[1]
        lookup = self._pending.get(prefix)
        if lookup is None:
            lookup = self._start_lookup(prefix, batch=hit is not None and hit[1] is not None)
        try:
            found = await asyncio.shield(lookup)
        except Exception:
            hit = self._entries.get(prefix)
            if hit is not None:  # no server answers (failover): the last answer stands
                return hit[1]
            raise
        return found.get(prefix)

    def _start_lookup(self, prefix: str, *, batch: bool) -> asyncio.Task[dict[str, ApiKeyRecord]]:
        """One task asking for `prefix` and, when `batch`, the known keys due for a refresh."""
        prefixes = [prefix, *self._due(exclude=prefix)] if batch else [prefix]
        lookup = asyncio.get_running_loop().create_task(self._refresh(prefixes, asked=prefix))
        for name in prefixes:
            self._pending[name] = lookup

        def finished(task: asyncio.Task[dict[str, ApiKeyRecord]]) -> None:
            for name in prefixes:
                if self._pending.get(name) is task:
                    del self._pending[name]
            if not task.cancelled():
                task.exception()  # a failure is the callers' to handle: never "not retrieved"

        lookup.add_done_callback(finished)
        return lookup

    def _due(self, *, exclude: str) -> list[str]:
        """Known prefixes whose entry is at least `ttl / 2` old, none already being looked up."""
        due_before = time.monotonic() - self.ttl / 2
        due = []
        for name, (at, record) in self._entries.items():
            if at > due_before or record is None or name == exclude or name in self._pending:
                continue
            due.append(name)
            if len(due) + 1 >= self.batch_size:
                break
        return due

    async def _refresh(self, prefixes: list[str], *, asked: str) -> dict[str, ApiKeyRecord]:
        """Look the prefixes up and store the answers (a prefix without a key: None); entries
        evicted meanwhile stay out, except the one a caller asked for."""
        started = time.monotonic()  # an answer is as old as the query that gave it
        found = await self._lookup(prefixes)
        for name in prefixes:
            if name == asked or name in self._entries:
                self._entries[name] = (started, found.get(name))
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return found

    async def _lookup(self, prefixes: list[str]) -> dict[str, ApiKeyRecord]:
        sources = [self.engine] if self.replica is None else [self.engine, self.replica]
        for index, source in enumerate(sources):
            try:
                async with asyncio.timeout(self.lookup_timeout):
                    async with source().connect() as conn:
                        return await find_api_keys(conn, prefixes=prefixes)
            except (TimeoutError, SQLAlchemyError, OSError):
                if index == len(sources) - 1:
                    raise
        raise AssertionError("unreachable")


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
