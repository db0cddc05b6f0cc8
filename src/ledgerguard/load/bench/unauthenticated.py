"""How many requests without a valid key per second the API absorbs while keyed traffic keeps
its latency: the p99 of a fixed keyed load (open loop) idle, then beside a flood of forged keys
at increasing rates, each flood sent by a process of its own so the two do not share a CPU slot
of one event loop.

The figure reported is the largest flood rate whose keyed p99 stays within 2x of the idle run.
Floods come from one address (loopback), so they exercise the per-address refusal
(`LEDGERGUARD_API_UNAUTHENTICATED_RATE_LIMIT`: 429 before any key lookup), which is what a
single attacking host gets.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from typing import Any

import httpx

from ledgerguard.load.runner import LoadConfig, run_load_sync


async def _flood(url: str, rate: float, duration: float) -> dict[str, Any]:
    """Open-loop GETs with forged keys at `rate`/s for `duration` s; what was answered how."""
    statuses: dict[str, int] = {}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, timeout=5, limits=limits) as client:
        tasks: set[asyncio.Task[None]] = set()

        async def one(n: int) -> None:
            key = f"lg_{n % 10**12:012d}_{os.urandom(6).hex()}"
            try:
                response = await client.get("/transactions/1", headers={"X-API-Key": key})
                name = str(response.status_code)
            except httpx.HTTPError as exc:
                name = type(exc).__name__
            statuses[name] = statuses.get(name, 0) + 1

        start = time.monotonic()
        sent = 0
        while (elapsed := time.monotonic() - start) < duration:
            due = int(elapsed * rate)
            while sent < due and len(tasks) < 512:  # bounded backlog: the sender never grows
                task = asyncio.create_task(one(sent))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                sent += 1
            await asyncio.sleep(0.002)
        await asyncio.gather(*tasks)
        seconds = time.monotonic() - start
    answered = sum(v for k, v in statuses.items() if k.isdigit())
    return {"sent": sent, "answered_per_second": round(answered / seconds, 1), "statuses": statuses}


def _flood_process(url: str, rate: float, duration: float, out: Any) -> None:
    out.put(asyncio.run(_flood(url, rate, duration)))


def bench_unauthenticated(
    url: str,
    keys: tuple[str, ...],
    *,
    rates: tuple[float, ...],
    duration: float,
    keyed_rate: float,
    users: int = 20,
) -> dict[str, Any]:
    """Keyed p99 idle and beside each flood rate; JSON-able."""
    context = multiprocessing.get_context("spawn")
    runs = []
    for rate in (0.0, *rates):
        flood = None
        queue = context.Queue()
        if rate:
            # the flood runs a little longer than the measured keyed window on both sides
            flood = context.Process(
                target=_flood_process, args=(url, rate, duration + 3.0, queue), daemon=True
            )
            flood.start()
            time.sleep(1.0)
        report = run_load_sync(
            LoadConfig(url=url, keys=keys, users=users, duration=duration, rate=keyed_rate)
        ).to_dict()
        flooded = queue.get(timeout=duration + 60) if flood else None
        if flood:
            flood.join(timeout=10)
        runs.append(
            {
                "flood_rate_target": rate,
                "flood": flooded,
                "keyed_tps": report["tps"],
                "keyed_errors": report["errors"],
                "keyed_latency_ms": report["latency_ms"],
            }
        )
    idle_p99 = runs[0]["keyed_latency_ms"]["p99"]
    within = [
        r["flood"]["answered_per_second"]
        for r in runs[1:]
        if r["flood"] and r["keyed_latency_ms"]["p99"] <= 2 * idle_p99
    ]
    return {
        "benchmark": "unauthenticated",
        "keyed_rate": keyed_rate,
        "duration_s": duration,
        "idle_keyed_p99_ms": idle_p99,
        "max_unauthenticated_per_second_within_2x_p99": max(within) if within else 0,
        "load_average": list(os.getloadavg()),
        "runs": runs,
    }
