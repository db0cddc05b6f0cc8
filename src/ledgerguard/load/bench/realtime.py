"""`ledgerguard bench realtime`: what the streaming scorer costs the API, and how fast it is.

One run, one machine, in this order:

1. the cluster and the API are brought up if they are not running (as `bench ingest` does), a
   scorer that never ran is run until it has a checkpoint (`_ensure_checkpoint`), and a running
   scorer is stopped;
2. **without the scorer**: `users` closed-loop clients post realistic transactions of
   `customers` customers (1M by default, the state's users: ~2 % of the verdicts flagged, as on
   a payment platform; with `ledgerguard load`'s 10,000, every customer pays every few seconds
   and the velocity rule flags about half of them, each a wide `fraud_scores` row and an alert);
3. **with the scorer**: the scorer is started (`realtime.process.start_scorer`, as `ledgerguard
   up` does), scores what it missed since its checkpoint (phase 2's transactions, when it has
   run before), and the same load runs again; the scorer's CPU is read over the measured window;
4. the scorer catches up, and the **commit -> verdict latency** is read from the verdict
   timestamps: `realtime_verdicts.first_scored_at - transactions.created_at` for every
   transaction the API committed in the window (`created_at` is taken by the API just before its
   commit, so the figure includes the commit itself). The *first* verdict: a verdict the scorer
   revised later (a velocity burst or structuring group that kept growing: the load's hot
   customers pay many times a second) has a later `scored_at`, which measured the
   revision, not the wait — sessions before 0011 read that column and saw a "stall" whose
   maximum fell by one second per second of the phase. How many verdicts were revised is
   reported beside the latency;
5. the scorer's peak RSS (`VmHWM`) at the end, and, separately, the RSS of the online state
   holding `state_users` users' windows (`state_memory`: built in a child process, so the
   figure is the state's alone).

The ratio of the two API phases is the cost of the scorer to the write path: on one machine it
is CPU the scorer takes from the API and the servers, not contention in the primary (the
scorer reads the replica and writes its verdicts in batches).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ledgerguard.load.bench.ceiling import BenchError
from ledgerguard.load.bench.ingest import (
    IngestOptions,
    bench_keys,
    catch_up,
    check_target,
    ensure_api,
    machine_info,
)
from ledgerguard.load.bench.procstat import CpuMeter, children_of, connections_per_process
from ledgerguard.load.bench.servers import running_cluster
from ledgerguard.load.bench.state_memory import measure_state_memory
from ledgerguard.load.generator import GeneratorConfig
from ledgerguard.load.runner import LoadConfig, run_load_sync
from ledgerguard.load.target import api_url
from ledgerguard.settings import Settings

#: The issue's targets.
TARGET_P99_MS = 500.0
TARGET_TPS = 3000.0
TARGET_RATIO = 0.85
TARGET_STATE_RSS_MIB = 1024.0

Progress = Callable[[str], None]

#: Commit -> verdict latency of the transactions created in a window (one row each).
_LATENCY_SQL = (
    "SELECT TIMESTAMPDIFF(MICROSECOND, t.created_at, s.first_scored_at), "
    "TIMESTAMPDIFF(MICROSECOND, %s, t.created_at), "
    "s.scored_at > s.first_scored_at, s.flagged "
    "FROM transactions t LEFT JOIN realtime_verdicts s ON s.transaction_id = t.id "
    "WHERE t.created_at >= %s AND t.created_at < %s"
)


@dataclass(frozen=True)
class RealtimeOptions:
    duration: float = 30.0
    users: int = 50
    warmup: float = 2.0
    state_users: int = 1_000_000
    state_rows_per_user: int = 3
    #: distinct customers of the load (`GeneratorConfig.customers`): as many as the state's
    #: users, so the flagged share is a payment platform's (~2 %), not `ledgerguard load`'s
    #: 10,000 customers paying every few seconds (half of them flagged by the velocity rule)
    customers: int = 1_000_000
    catch_up_timeout: float = 300.0


def run_realtime(
    settings: Settings, options: RealtimeOptions, *, progress: Progress
) -> dict[str, Any]:
    """Both phases and the state's memory; the report (see the module docstring)."""
    from ledgerguard.api.server import stop_background
    from ledgerguard.realtime.process import running_pid, start_scorer, stop_scorer

    load_before = os.getloadavg()
    cluster, started_cluster = running_cluster(settings, progress)
    started_api = False
    try:
        api_pid, started_api = ensure_api(settings, IngestOptions(users=options.users), progress)
        keys = bench_keys(settings, count=options.users)
        _ensure_checkpoint(settings, options.catch_up_timeout, progress)
        if stop_scorer(settings):
            progress("stopped the running scorer for the phase without it")
        groups = {
            "api": [api_pid, *children_of(api_pid)],
            "primary": [pid for pid in [cluster.server("primary").pid()] if pid],
            "replica": [pid for pid in [cluster.server("replica").pid()] if pid],
        }
        progress(f"without the scorer: {options.users} users for {options.duration:g} s")
        without, _, _ = _load(settings, keys, options, groups)
        catch_up(cluster, IngestOptions(), progress)
        progress("starting the scorer")
        start_scorer(settings, timeout=options.catch_up_timeout)
        scorer_pid = running_pid(settings)
        if scorer_pid is None:
            raise BenchError("the scorer started but its pid file is missing; see its log")
        _wait_caught_up(settings, options.catch_up_timeout, progress)
        progress(f"with the scorer: {options.users} users for {options.duration:g} s")
        with_scorer, window, scorer_cpu = _load(
            settings, keys, options, groups | {"scorer": [scorer_pid]}
        )
        progress("waiting for the scorer to catch up")
        latency = _wait_for_verdicts(settings, window, options.catch_up_timeout)
        rss_mib = _peak_rss_mib(scorer_pid)
        stop_scorer(settings)
    finally:
        if started_api:
            stop_background(settings)
        if started_cluster:
            cluster.down(progress=progress)
    progress(f"online state of {options.state_users:,} users (child process)")
    state = measure_state_memory(options.state_users, options.state_rows_per_user)
    ratio = with_scorer["tps"] / without["tps"] if without["tps"] else None
    scored = latency["verdicts"]
    cpu_us = round(1e6 * scorer_cpu / scored) if scorer_cpu is not None and scored else None
    report = {
        "benchmark": "realtime",
        "machine": machine_info(load_before),
        "config": {
            "duration_s": options.duration,
            "warmup_s": options.warmup,
            "users": options.users,
            "customers": options.customers,
            "scorer_batch_ms": settings.scorer_batch_ms,
            "api_url": api_url(settings),
        },
        "api_without_scorer": without,
        "api_with_scorer": with_scorer,
        "ratio": None if ratio is None else round(ratio, 3),
        "verdict_latency_ms": latency,
        "scorer": {
            "cpu_seconds": scorer_cpu,
            "cpu_us_per_transaction": cpu_us,
            "peak_rss_mib": rss_mib,
        },
        "state_memory": state,
    }
    report["targets"] = _targets(report)
    return report


def _load(
    settings: Settings,
    keys: tuple[str, ...],
    options: RealtimeOptions,
    groups: dict[str, list[int]],
) -> tuple[dict[str, Any], tuple[datetime, datetime], float | None]:
    """One load phase: the API report, its measured window (UTC), the scorer's CPU seconds."""
    meter = CpuMeter(groups)
    window: list[datetime] = []
    spread: list[int] = []

    def on_window(begins: bool) -> None:
        (meter.start if begins else meter.stop)()
        window.append(datetime.now(UTC))
        if not begins:  # the clients' connections per API worker, as they ran
            workers = groups["api"][1:]  # (the Gunicorn master first)
            spread.extend(connections_per_process(workers, settings.api_port).values())

    report = run_load_sync(
        LoadConfig(
            url=api_url(settings),
            keys=keys,
            users=options.users,
            duration=options.duration,
            warmup=options.warmup,
            generator=GeneratorConfig(customers=options.customers),
        ),
        on_window=on_window,
    )
    cpu = meter.result(extra={"client": report.cpu_seconds})
    api = report.to_dict()
    summary = {
        "tps": api["tps"],
        "ok": api["ok"],
        "errors": api["errors"],
        "latency_ms": api["latency_ms"],
        "cpu_seconds": cpu,
        "connections_per_worker": spread,
    }
    return summary, (window[0], window[-1]), cpu.get("scorer")


def _wait_for_verdicts(
    settings: Settings, window: tuple[datetime, datetime], timeout: float
) -> dict[str, Any]:
    """Latency percentiles once every transaction of the window has its verdict (or timeout)."""
    from ledgerguard.db.engines import writer_engine

    engine = writer_engine(settings)
    start, end = (moment.replace(tzinfo=None) for moment in window)
    args = (start, start, end)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with engine.connect() as conn:
                cursor = conn.connection.dbapi_connection.cursor()
                cursor.execute(_LATENCY_SQL, args)
                rows = cursor.fetchall()
            values = [row[0] for row in rows]
            missing = sum(value is None for value in values)
            if missing == 0 or time.monotonic() > deadline:
                break
            time.sleep(1)
    finally:
        engine.dispose()
    known = np.array([value for value in values if value is not None], dtype=float) / 1000
    if len(known) == 0:
        return {
            "transactions": len(values),
            "verdicts": 0,
            "missing": missing,
            "p50": None,
            "p99": None,
            "max": None,
        }
    return {
        "transactions": len(values),
        "verdicts": len(known),
        "missing": missing,
        # verdicts the scorer changed after its first (the latency is the first one's)
        "revised": sum(bool(row[2]) for row in rows if row[0] is not None),
        # share of the window's verdicts flagged (each also a `fraud_scores` row and an alert)
        "flagged_share": round(
            sum(bool(row[3]) for row in rows if row[0] is not None) / len(known), 4
        ),
        "p50": round(float(np.percentile(known, 50)), 1),
        "p90": round(float(np.percentile(known, 90)), 1),
        "p99": round(float(np.percentile(known, 99)), 1),
        "max": round(float(known.max()), 1),
        "per_second": latency_timeline(
            [row[1] / 1e6 for row in rows if row[0] is not None], list(known)
        ),
    }


def latency_timeline(offsets_s: list[float], latencies_ms: list[float]) -> list[dict[str, Any]]:
    """Verdict latency per second of the phase (by commit time): where a stall sits in the run
    (a tail at the start is a catch-up, in the middle a pause or replica lag) — the percentiles
    alone cannot tell."""
    seconds: dict[int, list[float]] = {}
    for offset, latency in zip(offsets_s, latencies_ms, strict=True):
        seconds.setdefault(int(offset), []).append(latency)
    return [
        {
            "t": second,
            "transactions": len(values),
            "p50_ms": round(float(np.percentile(values, 50)), 1),
            "max_ms": round(max(values), 1),
        }
        for second, values in sorted(seconds.items())
    ]


def _ensure_checkpoint(settings: Settings, timeout: float, progress: Progress) -> None:
    """A scorer that never ran (a fresh cluster) runs once until it has a checkpoint, so the
    phase with it starts from that checkpoint and scores the first phase's transactions while
    it catches up, before the measured window — as a restarted scorer does.

    Without a checkpoint it starts at its snapshot, which holds the first phase's ~100,000
    transactions without a verdict; the first batch of each of their users then writes every
    one of them scored flagged inside the measured window, a one-time catch-up the size of the
    phase's own verdicts (benchmarks/README.md, "Session 8").
    """
    from ledgerguard.db.engines import writer_engine
    from ledgerguard.realtime.checkpoint import read_checkpoint
    from ledgerguard.realtime.partition import Partition
    from ledgerguard.realtime.process import running_pid, start_scorer, stop_scorer

    engine = writer_engine(settings)
    try:
        if read_checkpoint(engine, Partition().name) is not None:
            return
        progress("the scorer has no checkpoint yet: running it once to make one")
        if running_pid(settings) is None:
            start_scorer(settings, timeout=timeout)
        deadline = time.monotonic() + timeout
        while read_checkpoint(engine, Partition().name) is None:
            if time.monotonic() > deadline:
                raise BenchError("the scorer wrote no checkpoint; see its log")
            time.sleep(0.5)
    finally:
        engine.dispose()
    stop_scorer(settings)


def _wait_caught_up(settings: Settings, timeout: float, progress: Progress) -> None:
    """Until the scorer has scored what it had missed (a checkpoint of an earlier run): the
    measured phase is the steady state, not a catch-up."""
    from ledgerguard.realtime.partition import Partition
    from ledgerguard.realtime.status import read_status

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = read_status(settings, Partition()) or {}
        if status.get("lag_transactions") == 0:
            return
        time.sleep(0.5)
    progress("[yellow]the scorer did not catch up before the measured phase[/]")


def _peak_rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def _targets(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "verdict_p99_ms": check_target(
            report["verdict_latency_ms"]["p99"], TARGET_P99_MS, at_most=True
        ),
        "ingest_tps_with_scorer": check_target(report["api_with_scorer"]["tps"], TARGET_TPS),
        "ratio": check_target(report["ratio"], TARGET_RATIO),
        "state_rss_mib": check_target(
            report["state_memory"]["peak_rss_mib"], TARGET_STATE_RSS_MIB, at_most=True
        ),
    }
