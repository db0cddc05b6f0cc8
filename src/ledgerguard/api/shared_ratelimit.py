"""The per-key rate limit shared by every API worker on this host (one bucket per key, not one
per worker).

Semantics: `LEDGERGUARD_API_RATE_LIMIT` requests per second per key for the whole API on this
host, burst of 2 s, whatever worker the kernel hands a request to. Buckets live in a small
memory-mapped file (`<state dir>/api/ratelimit.bin`, 0600) that the Gunicorn workers map
together; each take is one `flock`-guarded read-modify-write of a 24-byte slot, a few
microseconds, no database and no extra process. Slots are found by open addressing on the key id;
a full table (more than `slots` keys seen since the API started) falls back to an unshared bucket
for the newcomers, so the limit never fails open. Several API hosts each enforce the full rate:
put the limit in the reverse proxy to cap a key across hosts.

`SharedAddressLimiter` uses the same buckets for the web app's login attempts per client address
(`LEDGERGUARD_WEB_LOGIN_ATTEMPTS_PER_MINUTE` for the whole host, not per worker).
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import struct
import time
from pathlib import Path

from ledgerguard.api.ratelimit import RateLimiter

_SLOT = struct.Struct("<qdd")  # key id (0 = empty), tokens, updated (CLOCK_MONOTONIC seconds)


class SharedRateLimiter:
    """Same interface as `RateLimiter.acquire`, counted across processes through `path`."""

    def __init__(
        self,
        path: Path,
        *,
        rate_per_second: float,
        slots: int = 65_536,
        burst_seconds: float = 2.0,
    ) -> None:
        self.rate = rate_per_second
        self.capacity = max(1.0, self.rate * burst_seconds)
        self.slots = slots
        self._fallback = RateLimiter(rate_per_second=rate_per_second, burst_seconds=burst_seconds)
        path.parent.mkdir(parents=True, exist_ok=True)
        size = slots * _SLOT.size
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        if os.fstat(self._fd).st_size < size:
            os.ftruncate(self._fd, size)
        self._map = mmap.mmap(self._fd, size)

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def acquire(self, key_id: int, *, now: float | None = None) -> float:
        """Take one token; returns 0 when allowed, else seconds to wait (for Retry-After)."""
        if not self.enabled:
            return 0.0
        now = time.monotonic() if now is None else now  # one clock for all processes
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            offset = self._slot_of(key_id)
            if offset is None:
                return self._fallback.acquire(key_id, now=now)
            stored, tokens, updated = _SLOT.unpack_from(self._map, offset)
            if stored == 0 or updated > now:
                # a new key, or a slot from before a reboot (the monotonic clock started again):
                # a full bucket, never one that waits until the clock passes the old reading
                tokens, updated = self.capacity, now
            tokens = min(self.capacity, tokens + max(0.0, now - updated) * self.rate)
            wait = 0.0
            if tokens >= 1:
                tokens -= 1
            else:
                wait = (1 - tokens) / self.rate
            _SLOT.pack_into(self._map, offset, key_id, tokens, now)
            return wait
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _slot_of(self, key_id: int) -> int | None:
        start = key_id % self.slots
        for probe in range(min(self.slots, 64)):
            offset = ((start + probe) % self.slots) * _SLOT.size
            stored = _SLOT.unpack_from(self._map, offset)[0]
            if stored in (0, key_id):
                return offset
        return None

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)


class SharedAddressLimiter:
    """Login attempts per client address, counted across every worker of this host.

    A bucket of `per_minute` attempts per address that refills at `per_minute` a minute: a
    client may try `per_minute` times at once, then once every `60 / per_minute` seconds (the
    per-worker sliding minute it replaces let W workers grant W times that). 0 disables it.
    Same interface as `ledgerguard.web.throttle.LoginThrottle.wait`.
    """

    def __init__(self, path: Path, *, per_minute: int) -> None:
        self._limiter = SharedRateLimiter(path, rate_per_second=per_minute / 60, burst_seconds=60.0)

    def wait(self, client: str, now: float | None = None) -> float:
        """Seconds `client` must wait before another attempt (0: go ahead, and it is counted)."""
        return self._limiter.acquire(_address_id(client), now=now)

    def close(self) -> None:
        self._limiter.close()


def _address_id(client: str) -> int:
    """A positive 63-bit id for an address (slot ids are signed, 0 marks an empty slot)."""
    digest = hashlib.blake2b(client.encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "little") & (2**63 - 1)) or 1
