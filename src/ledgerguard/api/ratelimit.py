"""Token buckets in one worker's memory: the per-address limit on failed authentications.

The configured rate is for the whole server: each of N workers enforces rate/N (requests are
spread over workers by the kernel), so no shared store sits on that path. Burst = 2 s worth.
The per-key limit is shared by the workers (`ledgerguard.api.shared_ratelimit`) and uses this
class only as its fallback.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets by key (an API key id, a client address); at most `max_buckets` are kept,
    the least recently used dropped first (a dropped bucket starts full again)."""

    def __init__(
        self,
        *,
        rate_per_second: float,
        workers: int = 1,
        max_buckets: int = 100_000,
        burst_seconds: float = 2.0,
    ) -> None:
        self.rate = rate_per_second / max(1, workers)
        self.capacity = max(1.0, self.rate * burst_seconds)
        self.max_buckets = max_buckets
        self._buckets: OrderedDict[Hashable, _Bucket] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def _bucket(self, key: Hashable, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.capacity, now)
            if len(self._buckets) > self.max_buckets:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        return bucket

    def acquire(self, key_id: Hashable, *, now: float | None = None) -> float:
        """Take one token; returns 0 when allowed, else seconds to wait (for Retry-After)."""
        if not self.enabled:
            return 0.0
        bucket = self._bucket(key_id, time.monotonic() if now is None else now)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate

    def exhausted(self, key: Hashable, *, now: float | None = None) -> float:
        """Seconds until `key` has a token again (0: it has one); takes nothing."""
        if not self.enabled or key not in self._buckets:
            return 0.0
        bucket = self._bucket(key, time.monotonic() if now is None else now)
        return 0.0 if bucket.tokens >= 1 else (1 - bucket.tokens) / self.rate


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
