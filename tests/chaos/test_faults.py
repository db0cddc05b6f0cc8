"""Fault injection with real processes: every transaction acknowledged with 201 survives, once.

Order matters: the failover scenario runs last because it swaps the roles of the two servers.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx

from ledgerguard.cluster.failover import failover, plan
from ledgerguard.cluster.local import LocalCluster
from ledgerguard.settings import Settings
from tests.chaos.load import (
    BackgroundLoad,
    assert_each_acknowledged_once,
    assert_failed_over_and_rejoined,
)


def _primary_port(settings: Settings) -> int:
    return LocalCluster(settings).specs["primary"].port


def test_kill_primary_then_restart(
    chaos_cluster: LocalCluster, chaos_api: str, chaos_key: str, chaos_settings: Settings
):
    with BackgroundLoad(chaos_api, chaos_key) as load:
        load.wait_for_acks(50)
        chaos_cluster.server("primary").kill()  # kill -9
        load.wait_for_status(503)  # 503 while it is down
        chaos_cluster.up()  # crash recovery; the API reconnects by itself
        load.wait_for_acks(50)
    assert load.result.statuses[500] == 0
    assert_each_acknowledged_once(chaos_settings, _primary_port(chaos_settings), load)


def test_stop_replica_under_load_then_catch_up(
    chaos_cluster: LocalCluster, chaos_api: str, chaos_key: str, chaos_settings: Settings
):
    with BackgroundLoad(chaos_api, chaos_key) as load:
        load.wait_for_acks(20)
        chaos_cluster.server("replica").stop(root_password=chaos_cluster.root_password)
        load.wait_for_acks(100)  # writes go on (semi-sync falls back to async after its timeout)
        chaos_cluster.up()
        load.wait_for_acks(20)
    chaos_cluster.wait_for_replica(timeout=60)
    assert chaos_cluster.checksum().clean
    assert_each_acknowledged_once(chaos_settings, _primary_port(chaos_settings), load)


def _gunicorn_workers(settings: Settings) -> list[int]:
    master = int((settings.state_dir / "api" / "gunicorn.pid").read_text())
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


def test_kill_api_worker_retries_create_no_duplicates(
    chaos_cluster: LocalCluster, chaos_api: str, chaos_key: str, chaos_settings: Settings
):
    with BackgroundLoad(chaos_api, chaos_key, retry_same_key=True) as load:
        load.wait_for_acks(50)
        victim = _gunicorn_workers(chaos_settings)[0]
        os.kill(victim, signal.SIGKILL)
        load.wait_for_acks(100)  # the master respawns the worker; the other kept serving
    assert load.result.statuses[500] == 0
    assert_each_acknowledged_once(chaos_settings, _primary_port(chaos_settings), load)


def test_kill_primary_and_fail_over(
    chaos_cluster: LocalCluster, chaos_api: str, chaos_key: str, chaos_settings: Settings
):
    old_port = _primary_port(chaos_settings)
    with BackgroundLoad(chaos_api, chaos_key) as load:
        load.wait_for_acks(50)
        chaos_cluster.server("primary").kill()
        steps = plan(LocalCluster(chaos_settings))
        assert not steps.old_primary_up and steps.refusal is None, steps
        started = time.monotonic()
        failover(LocalCluster(chaos_settings))
        load.wait_for_acks(20, timeout=10)
        first_ok = next(t for t in load.result.ok_times if t > started)
        print(f"writes resumed {first_ok - started:.2f} s after the failover began")
        assert first_ok - started < 10
    assert_failed_over_and_rejoined(chaos_settings, old_port, load)
    ready = httpx.get(f"{chaos_api}/ready").json()
    assert ready["primary"] and ready["replica"]
