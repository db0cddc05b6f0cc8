"""How many requests without a valid key per second the API absorbs while keyed traffic keeps
its latency: the p99 of a fixed keyed load (open loop) idle, then beside a flood of forged keys
at increasing rates, each flood sent by a process of its own so the two do not share a CPU slot
of one event loop.

The figure reported is the largest flood rate whose keyed p99 stays within 2x of the idle run.
Floods come from one address, so they exercise the per-address refusal
(`LEDGERGUARD_API_UNAUTHENTICATED_RATE_LIMIT`: 429 before any key lookup), which is what a
single attacking host gets. Against a loopback API the flood is sent from `127.0.0.2`
(`FLOOD_SOURCE`, also the loopback device) and the keyed load from `127.0.0.1`: from one shared
address the keyed clients would be refused by the attacker's used-up budget, and the figure would
measure the per-address limit instead of what the flood costs everybody else. A run counts only
when the keyed load got no errors.
"""

from __future__ import annotations

import asyncio
import ipaddress
import multiprocessing
import os
import time
from typing import Any
from urllib.parse import urlsplit

from ledgerguard.load.client import Endpoint, HttpClientError, build_request, connect
from ledgerguard.load.runner import LoadConfig, run_load_sync

#: Keep-alive connections the flood spreads its requests over.
_CONNECTIONS = 32
#: The flood's source address when the API listens on loopback (any 127.0.0.0/8 address is).
FLOOD_SOURCE = "127.0.0.2"


def flood_source(url: str) -> str | None:
    """`FLOOD_SOURCE` for a loopback API, else None (the system picks the address)."""
    host = urlsplit(url).hostname or ""
    try:
        return FLOOD_SOURCE if ipaddress.ip_address(host).is_loopback else None
    except ValueError:
        return FLOOD_SOURCE if host == "localhost" else None


async def _flood(url: str, rate: float, duration: float) -> dict[str, Any]:
    """Open-loop GETs with forged keys at `rate`/s for `duration` s; what was answered how.

    Sent with the load tool's own HTTP client (~90 µs of client CPU a request, where httpx
    needed several times that and capped the flood below the rates asked for): `_CONNECTIONS`
    keep-alive connections, each taking the next due request; a request that falls more than a
    second behind its schedule is counted as `missed`, not sent late.
    """
    endpoint = Endpoint.parse(url)
    source = flood_source(url)
    statuses: dict[str, int] = {}
    start = time.monotonic()
    next_index = 0
    missed = 0

    async def sender() -> None:
        nonlocal next_index, missed
        conn = await connect(endpoint, source=source)
        while True:
            n = next_index
            next_index += 1
            due = start + n / rate
            if due - start >= duration:
                break
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -1.0:
                missed += 1
                continue
            key = f"lg_{n % 10**12:012d}_{os.urandom(6).hex()}"
            raw = build_request("GET", endpoint, "/transactions/1", {"X-API-Key": key})
            try:
                if conn.closed:
                    conn = await connect(endpoint, source=source)
                status, _ = await conn.request(raw, timeout=5.0)
                name = str(status)
            except HttpClientError as exc:
                name = type(exc).__name__
            statuses[name] = statuses.get(name, 0) + 1
        conn.close()

    await asyncio.gather(*(sender() for _ in range(_CONNECTIONS)))
    seconds = time.monotonic() - start
    answered = sum(v for k, v in statuses.items() if k.isdigit())
    return {
        "sent": sum(statuses.values()),
        "missed": missed,
        "answered_per_second": round(answered / seconds, 1),
        "statuses": statuses,
    }


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
        if r["flood"] and not r["keyed_errors"] and r["keyed_latency_ms"]["p99"] <= 2 * idle_p99
    ]
    return {
        "benchmark": "unauthenticated",
        "keyed_rate": keyed_rate,
        "flood_source": flood_source(url),
        "duration_s": duration,
        "idle_keyed_p99_ms": idle_p99,
        "max_unauthenticated_per_second_within_2x_p99": max(within) if within else 0,
        "load_average": list(os.getloadavg()),
        "runs": runs,
    }
