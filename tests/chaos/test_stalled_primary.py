"""A primary that is alive but does not answer (SIGSTOP): bounded answers, then a fenced failover.

Its own cluster and API (module fixtures): the second scenario swaps the servers' roles.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from ledgerguard.cluster.failover import failover, plan
from ledgerguard.cluster.local import LocalCluster
from ledgerguard.processes import pid_alive
from ledgerguard.settings import Settings
from tests.chaos.load import (
    BackgroundLoad,
    assert_each_acknowledged_once,
    assert_failed_over_and_rejoined,
)
from tests.support import make_settings


@pytest.fixture(scope="module")
def chaos_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # a small queue and a short wait, so a 10 s stall shows both bounds
    return make_settings(
        tmp_path_factory.mktemp("stall"), api_workers=2, write_queue_size=10, write_timeout=2.0
    )


def _api_rss_kib(settings: Settings) -> int:
    master = int((settings.state_dir / "api" / "gunicorn.pid").read_text())
    pids = [master, *map(int, Path(f"/proc/{master}/task/{master}/children").read_text().split())]
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def test_stalled_primary_answers_503_with_bounded_memory_and_loses_nothing(
    chaos_cluster: LocalCluster, chaos_api: str, chaos_key: str, chaos_settings: Settings
):
    primary = chaos_cluster.server("primary")
    with BackgroundLoad(chaos_api, chaos_key, users=50) as load:
        load.wait_for_acks(200, timeout=60)
        before = _api_rss_kib(chaos_settings)
        pid = primary.pid()
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        peak = before
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                peak = max(peak, _api_rss_kib(chaos_settings))
                time.sleep(0.5)
            during = dict(load.result.statuses)
        finally:
            os.kill(pid, signal.SIGCONT)
        load.wait_for_acks(200, timeout=60)
    statuses = load.result.statuses
    print(f"statuses {dict(statuses)}; API RSS {before} KiB -> peak {peak} KiB during the stall")
    assert during.get(503, 0) > 0, during  # answered, not left hanging
    assert statuses[500] == 0 and statuses["connection-error"] == 0, statuses
    assert peak - before < 64 * 1024, (before, peak)
    assert_each_acknowledged_once(
        chaos_settings, LocalCluster(chaos_settings).specs["primary"].port, load
    )


def test_failover_fences_a_stalled_primary(
    chaos_cluster: LocalCluster, chaos_api: str, chaos_key: str, chaos_settings: Settings
):
    old = chaos_cluster.server("primary")
    old_port = old.spec.port
    with BackgroundLoad(chaos_api, chaos_key, users=8) as load:
        load.wait_for_acks(100, timeout=60)
        pid = old.pid()
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        steps = plan(LocalCluster(chaos_settings))
        assert steps.fence and not steps.old_primary_up and steps.refusal is None, steps
        started = time.monotonic()
        outcome: list[object] = []
        worker = threading.Thread(
            target=lambda: outcome.append(failover(LocalCluster(chaos_settings))), daemon=True
        )
        worker.start()
        worker.join(timeout=120)
        assert not worker.is_alive(), "failover did not finish within 120 s"
        assert outcome, "failover raised"
        assert not pid_alive(pid), "the stalled old primary was not fenced"
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
        load.wait_for_acks(50, timeout=30)
        first_ok = next(t for t in load.result.ok_times if t > started)
        print(f"writes resumed {first_ok - started:.2f} s after the failover began")
    assert load.result.statuses[500] == 0, load.result.statuses
    # no row reached the old primary after the promotion: it rejoins as a replica by GTID
    # (an extra transaction of its own would stop replication) and the tables match
    assert_failed_over_and_rejoined(chaos_settings, old_port, load)
    ready = httpx.get(f"{chaos_api}/ready").json()
    assert ready["primary"] and ready["epoch"] == 1, ready
