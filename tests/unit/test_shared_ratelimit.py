"""The per-key limit is one bucket for all workers (each worker maps the same file)."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path

from ledgerguard.api.shared_ratelimit import SharedAddressLimiter, SharedRateLimiter


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


def _logins(path: Path, client: str, count: int, now: float) -> int:
    limiter = SharedAddressLimiter(path, per_minute=3)
    try:
        return sum(limiter.wait(client, now=now) == 0 for _ in range(count))
    finally:
        limiter.close()


def test_login_attempts_per_address_are_counted_across_workers(tmp_path: Path):
    path = tmp_path / "logins.bin"
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        # 3 a minute: two "workers" asked 3 times each by one address grant 3 in all, not 6
        allowed = pool.starmap(_logins, [(path, "10.1.2.3", 3, 50.0)] * 2)
    assert sum(allowed) == 3, allowed
    assert _logins(path, "10.1.2.4", 3, 50.0) == 3  # another address has its own budget
    assert _logins(path, "10.1.2.3", 3, 70.0) == 1  # one more every 20 s
    assert SharedAddressLimiter(path, per_minute=0).wait("10.1.2.3") == 0  # disabled


def test_a_bucket_from_before_a_reboot_starts_full(tmp_path: Path):
    """The file outlives the machine's monotonic clock: a slot stamped later than now is from
    before a reboot and must not wait until the clock passes it again."""
    path = tmp_path / "ratelimit.bin"
    assert _take(path, 7, 5, 1_000_000.0) == 4
    assert _take(path, 7, 4, 12.0) == 4
