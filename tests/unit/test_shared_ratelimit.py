"""The per-key limit is one bucket for all workers (each worker maps the same file)."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path

from ledgerguard.api.shared_ratelimit import SharedRateLimiter


def _take(path: Path, key_id: int, count: int, now: float) -> int:
    limiter = SharedRateLimiter(path, rate_per_second=2.0)
    try:
        return sum(limiter.acquire(key_id, now=now) == 0 for _ in range(count))
    finally:
        limiter.close()


def test_two_worker_processes_share_one_bucket_per_key(tmp_path: Path):
    path = tmp_path / "ratelimit.bin"
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        # rate 2/s, burst 4: two "workers" asking 4 each at the same instant get 4 in all
        allowed = pool.starmap(_take, [(path, 7, 4, 100.0), (path, 7, 4, 100.0)])
    assert sum(allowed) == 4, allowed
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # another key has its own bucket; time refills at the configured rate
    assert _take(path, 8, 4, 100.0) == 4
    assert _take(path, 7, 4, 101.0) == 2
