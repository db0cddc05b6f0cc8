"""Login attempts per client address, per worker: a sliding minute.

The account lockout stops guessing one account's password; this stops one client from trying
many accounts (and from locking them all out) quickly. Kept per worker process on `app.state`:
with W workers a client gets at most W times the limit. The API's lifespan replaces it with
`ledgerguard.api.shared_ratelimit.SharedAddressLimiter` (same `wait`), counted across workers.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

WINDOW_S = 60.0


@dataclass
class LoginThrottle:
    per_minute: int
    max_clients: int = 10_000
    _attempts: dict[str, deque[float]] = field(default_factory=dict)

    def wait(self, client: str, now: float | None = None) -> float:
        """Seconds `client` must wait before another attempt (0: go ahead, and it is counted)."""
        if self.per_minute <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        seen = self._attempts.get(client)
        if seen is None:
            if len(self._attempts) >= self.max_clients:
                self._attempts.clear()
            seen = self._attempts[client] = deque()
        while seen and now - seen[0] >= WINDOW_S:
            seen.popleft()
        if len(seen) >= self.per_minute:
            return WINDOW_S - (now - seen[0])
        seen.append(now)
        return 0.0
