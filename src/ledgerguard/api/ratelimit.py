"""Per-API-key rate limit: a token bucket per key, in each worker's memory.

The configured rate is for the whole server: each of N workers enforces rate/N (requests are
spread over workers by the kernel), so no shared store sits on the hot path. Burst = 2 s worth.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, *, rate_per_second: float, workers: int = 1) -> None:
        self.rate = rate_per_second / max(1, workers)
        self.capacity = max(1.0, self.rate * 2)
        self._buckets: dict[int, _Bucket] = {}

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def acquire(self, key_id: int, *, now: float | None = None) -> float:
        """Take one token; returns 0 when allowed, else seconds to wait (for Retry-After)."""
        if not self.enabled:
            return 0.0
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(key_id)
        if bucket is None:
            bucket = self._buckets[key_id] = _Bucket(self.capacity, now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
