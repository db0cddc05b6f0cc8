"""`ledgerguard bench ingest`: how close the API's durable writes come to the primary's ceiling.

One run, one machine, in this order:

1. the cluster and the API are brought up on the configured ports if they are not running
   (and stopped again at the end, unless `keep_running`);
2. the durability settings are read from both servers, as they run;
3. the **ceiling**: `sysbench oltp_insert` against the primary (see `ceiling`), then a wait until
   the replica has applied the sysbench rows, so they do not count as lag of the API phase;
4. the **API**: `users` closed-loop clients posting realistic transactions (`ledgerguard load`),
   while the replica's lag is sampled every 0.5 s (see `servers.LagSampler`);
5. CPU seconds of the API workers, each server, the client and the rest of the machine are taken
   around both phases (see `procstat`), so a reader can tell a slow API from a busy machine.

Each virtual user gets its own API key (kept in `<state dir>/bench-api-keys`, 0600, reused while
active): the per-key rate limit (`LEDGERGUARD_API_RATE_LIMIT`, per client) is a policy for real
clients, and a benchmark standing in for many clients must not be throttled as if it were one.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ledgerguard.cluster.local import LocalCluster
from ledgerguard.errors import LedgerGuardError
from ledgerguard.files import write_private
from ledgerguard.load.bench.ceiling import BenchError, measure_ceiling, sysbench_path
from ledgerguard.load.bench.procstat import CpuMeter, children_of
from ledgerguard.load.bench.servers import (
    LagSampler,
    durability_settings,
    running_cluster,
    semi_sync_during,
    semi_sync_status,
)
from ledgerguard.load.report import Snapshot
from ledgerguard.load.runner import LoadConfig, run_load_sync
from ledgerguard.load.target import api_url
from ledgerguard.settings import Settings

#: The issue's targets; the report says for each whether this run met it.
TARGET_TPS = 3000.0
TARGET_P99_MS = 50.0
TARGET_RATIO = 0.35
TARGET_LAG_P99_S = 1.0

Progress = Callable[[str], None]


@dataclass(frozen=True)
class IngestOptions:
    duration: float = 30.0
    users: int = 50
    api_workers: int | None = None
    warmup: float = 2.0
    ceiling: bool = True
    keep_running: bool = False
    lag_interval: float = 0.5
    replica_catch_up_timeout: float = 300.0


def run_ingest(
    settings: Settings,
    options: IngestOptions,
    *,
    progress: Progress,
    on_tick: Callable[[Snapshot], None] | None = None,
) -> dict[str, Any]:
    """Run both phases and return the report (see the module docstring for what is in it)."""
    if options.ceiling:
        sysbench_path()  # fail before starting anything when sysbench is missing
    load_before = os.getloadavg()
    cluster, started_cluster = running_cluster(settings, progress)
    started_api = False
    try:
        api_pid, started_api = ensure_api(settings, options, progress)
        workers = children_of(api_pid)
        keys = bench_keys(settings, count=options.users)
        durability = {
            role: durability_settings(cluster.specs[role], root_password=cluster.root_password)
            for role in ("primary", "replica")
        }
        groups = {
            "api": [api_pid, *workers],
            "primary": [pid for pid in [cluster.server("primary").pid()] if pid],
            "replica": [pid for pid in [cluster.server("replica").pid()] if pid],
        }
        ceiling = _ceiling_phase(cluster, groups, options, progress) if options.ceiling else None
        progress(f"API: {options.users} users for {options.warmup:g} s + {options.duration:g} s")
        api, lag = _api_phase(cluster, groups, settings, keys, options, on_tick)
        api["replica_catch_up_s"] = catch_up(cluster, options, progress)
    finally:
        if not options.keep_running:
            if started_api:
                from ledgerguard.api.server import stop_background

                stop_background(settings)
                progress("stopped the API it had started")
            if started_cluster:
                cluster.down(progress=progress)
    ratio = api["tps"] / ceiling["tps"] if ceiling and ceiling["tps"] else None
    return {
        "benchmark": "ingest",
        "machine": machine_info(load_before),
        "config": {
            "duration_s": options.duration,
            "warmup_s": options.warmup,
            "users": options.users,
            "api_workers": len(workers),
            "api_url": api_url(settings),
            "api_keys": len(keys),
            "api_pool_size": settings.api_pool_size,
            "started_cluster": started_cluster,
            "started_api": started_api,
        },
        "durability": durability,
        "ceiling": ceiling,
        "api": api,
        "ratio": None if ratio is None else round(ratio, 3),
        "replica_lag": lag,
        "targets": _targets(api, ratio, lag),
    }


def _ceiling_phase(
    cluster: LocalCluster, groups: dict[str, list[int]], options: IngestOptions, progress: Progress
) -> dict[str, Any]:
    """sysbench against the primary, with CPU and semi-sync counters, then the replica's wait."""
    primary, root = cluster.specs["primary"], cluster.root_password
    meter = CpuMeter(groups)
    semi_before = semi_sync_status(primary, root_password=root)
    meter.start()
    children_before = os.times()
    result = measure_ceiling(
        primary,
        root_password=root,
        threads=options.users,
        duration=options.duration,
        warmup=options.warmup,
        progress=progress,
    )
    meter.stop()
    children = os.times()
    sysbench_cpu = (children.children_user - children_before.children_user) + (
        children.children_system - children_before.children_system
    )
    ceiling = result.to_dict()
    ceiling["cpu_seconds"] = meter.result(extra={"sysbench": sysbench_cpu})
    # the meter also covers sysbench's prepare and warm-up: an upper bound per insert
    ceiling["cpu_us_per_transaction_upper_bound"] = per_transaction(
        ceiling["cpu_seconds"], result.transactions
    )
    ceiling["semi_sync"] = semi_sync_during(
        semi_before, semi_sync_status(primary, root_password=root)
    )
    ceiling["replica_catch_up_s"] = catch_up(cluster, options, progress)
    return ceiling


def _api_phase(
    cluster: LocalCluster,
    groups: dict[str, list[int]],
    settings: Settings,
    keys: tuple[str, ...],
    options: IngestOptions,
    on_tick: Callable[[Snapshot], None] | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The load run with the lag sampler beside it; CPU is read over the measured window only."""
    primary, root = cluster.specs["primary"], cluster.root_password
    sampler = LagSampler(
        primary, cluster.specs["replica"], root_password=root, interval=options.lag_interval
    )
    meter = CpuMeter(groups)
    config = LoadConfig(
        url=api_url(settings),
        keys=keys,
        users=options.users,
        duration=options.duration,
        warmup=options.warmup,
    )
    semi_before = semi_sync_status(primary, root_password=root)
    sampler.start()
    try:
        report = run_load_sync(
            config,
            on_tick=on_tick,
            on_window=lambda begins: meter.start() if begins else meter.stop(),
        )
    finally:
        sampler.stop()
    api = report.to_dict()
    api["cpu_seconds"] = meter.result(extra={"client": report.cpu_seconds})
    api["cpu_us_per_transaction"] = per_transaction(api["cpu_seconds"], report.ok)
    api["semi_sync"] = semi_sync_during(semi_before, semi_sync_status(primary, root_password=root))
    api["rows_per_commit"] = rows_per_commit(report.ok, api["semi_sync"] or {})
    return api, sampler.summary()


def rows_per_commit(rows: int, semi_sync: dict[str, Any]) -> float | None:
    """Transactions per COMMIT on the primary during the phase (the writer's group commit).

    The API's and the primary's CPU per transaction fall as batches grow (one INSERT, COMMIT
    and GTID read per batch), and batch size depends on timing: compare CPU figures of two runs
    only together with this one. Counted from the primary's semi-sync commit counters (acknowledged
    or not); None without them.
    """
    counts = [semi_sync.get("acknowledged_commits"), semi_sync.get("unacknowledged_commits")]
    commits = sum(c for c in counts if isinstance(c, int))
    return round(rows / commits, 2) if commits > 0 else None


def ensure_api(settings: Settings, options: IngestOptions, progress: Progress) -> tuple[int, bool]:
    """The running API's master pid, starting it (with `api_workers`) when it is not running."""
    from ledgerguard.api.server import running_pid, start_background

    pid = running_pid(settings)
    if pid is not None:
        workers = len(children_of(pid))
        if options.api_workers is not None and options.api_workers != workers:
            raise BenchError(
                f"the API on port {settings.api_port} already runs with {workers} worker(s); "
                "stop it (`ledgerguard api stop`) to let the bench start it with "
                f"--api-workers {options.api_workers}, or drop --api-workers"
            )
        progress(f"using the running API (pid {pid}, {workers} workers)")
        return pid, False
    if options.api_workers is not None:
        settings = settings.model_copy(update={"api_workers": options.api_workers})
    progress(f"starting the API with {settings.workers} worker(s) on port {settings.api_port}")
    start_background(settings)
    pid = running_pid(settings)
    if pid is None:
        raise BenchError("the API started but its pid file is missing; see the API log")
    # the workers are forked after the master answers /health once; wait until all are there
    deadline = time.monotonic() + 10
    while len(children_of(pid)) < settings.workers and time.monotonic() < deadline:
        time.sleep(0.1)
    return pid, True


def bench_keys(settings: Settings, *, count: int) -> tuple[str, ...]:
    """`count` active keys with transactions:write, reused from `<state dir>/bench-api-keys`."""
    from ledgerguard.db.api_keys import create_api_key, find_api_key_sync
    from ledgerguard.db.engines import migration_engine

    path = settings.state_dir / "bench-api-keys"
    saved = path.read_text().split() if path.exists() else []
    engine = migration_engine(settings)
    try:
        with engine.begin() as conn:
            keys = []
            for plain in saved:
                record = find_api_key_sync(conn, plain=plain)
                if record is not None and record.active:
                    keys.append(plain)
            while len(keys) < count:
                _, plain = create_api_key(
                    conn, name=f"bench-{os.urandom(4).hex()}", scopes=("transactions:write",)
                )
                keys.append(plain)
    except sa.exc.SQLAlchemyError as exc:
        raise BenchError(f"cannot create bench API keys: {str(exc).splitlines()[0]}") from exc
    finally:
        engine.dispose()
    write_private(path, "\n".join(keys) + "\n")
    return tuple(keys[:count])


def per_transaction(cpu: dict[str, float | None], transactions: int) -> dict[str, float | None]:
    """CPU microseconds per committed transaction for each process group."""
    return {
        name: None if seconds is None or not transactions else round(1e6 * seconds / transactions)
        for name, seconds in cpu.items()
        if name not in ("machine_busy", "machine_capacity", "other")
    }


def catch_up(cluster: LocalCluster, options: IngestOptions, progress: Progress) -> float | None:
    """Seconds until the replica has everything the primary wrote (None if it did not)."""
    began = time.monotonic()
    try:
        cluster.wait_for_replica(timeout=options.replica_catch_up_timeout)
    except LedgerGuardError as exc:
        progress(f"[yellow]replica did not catch up[/]: {exc}")
        return None
    return round(time.monotonic() - began, 2)


def machine_info(load_before: tuple[float, float, float]) -> dict[str, Any]:
    pretty = platform.platform()
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                pretty = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "os": pretty,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": package_versions(),
        "loadavg_before": [round(v, 2) for v in load_before],
        "loadavg_after": [round(v, 2) for v in os.getloadavg()],
    }


#: The libraries on the API's request path (and the load client's event loop), whose versions a
#: report records: two reports of the same code on different venvs can then be told apart.
HOT_PATH_PACKAGES = (
    "fastapi",
    "starlette",
    "pydantic",
    "pydantic-core",
    "uvicorn",
    "uvicorn-worker",
    "gunicorn",
    "httptools",
    "uvloop",
    "sqlalchemy",
    "asyncmy",
    "prometheus-client",
)


def package_versions() -> dict[str, str | None]:
    """Installed versions of `HOT_PATH_PACKAGES` (None when one is missing).

    Issue #13: the API's CPU per request differed by 1.8x between two sessions and the venv of
    the older one was not recorded, so a library upgrade could be neither confirmed nor ruled out.
    """
    versions: dict[str, str | None] = {}
    for name in HOT_PATH_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _cpu_model() -> str | None:
    """The CPU's model name (a VM may move to another host between sessions)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def check_target(measured: float | None, target: float, *, at_most: bool = False) -> dict[str, Any]:
    """One row of a report's `targets`: the target, the measurement, whether it was met."""
    met = None if measured is None else (measured <= target if at_most else measured >= target)
    return {"target": target, "measured": measured, "met": met}


def _targets(api: dict[str, Any], ratio: float | None, lag: dict[str, Any]) -> dict[str, Any]:
    p99 = api["latency_ms"].get("p99")
    lag_p99 = lag["lag_s"]["p99"]
    check = check_target
    return {
        "tps": check(api["tps"], TARGET_TPS),
        "p99_ms": check(p99, TARGET_P99_MS, at_most=True),
        "ratio": check(None if ratio is None else round(ratio, 3), TARGET_RATIO),
        "replica_lag_p99_s": check(lag_p99, TARGET_LAG_P99_S, at_most=True),
    }
