"""Client CPU per request of three HTTP clients against the same API: the measurement behind
the choice of `ledgerguard.load.client` (see its docstring).

Each client runs in its own process (so `time.process_time()` is that client's alone), on uvloop,
with the same closed loop: N connections, POST /transactions with the same generated bodies,
for T seconds. Prints one JSON line per client. aiohttp is optional (`pip install aiohttp`).

    .venv/bin/python benchmarks/client_cpu.py --api http://127.0.0.1:28000 \
        --key "$(paste -sd, "$LEDGERGUARD_HOME/bench-api-keys")"

(several keys, so the per-key rate limit of the API never answers 429 to the faster clients).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections import Counter

from ledgerguard.load.client import Endpoint, connect
from ledgerguard.load.generator import TransactionGenerator
from ledgerguard.load.runner import new_event_loop

Counts = Counter[int]


async def _raw(url: str, keys: list[str], users: int, seconds: float) -> Counts:
    endpoint = Endpoint.parse(url)
    generator = TransactionGenerator()
    statuses: Counts = Counter()
    deadline = time.perf_counter() + seconds

    async def user(key: str) -> None:
        head = (
            f"POST /transactions HTTP/1.1\r\nHost: {endpoint.host_header}\r\n"
            f"X-API-Key: {key}\r\nContent-Type: application/json\r\n"
        ).encode()
        conn = await connect(endpoint)
        while time.perf_counter() < deadline:
            body = generator.body()
            raw = b"%sContent-Length: %d\r\n\r\n%s" % (head, len(body), body)
            status, _ = await conn.request(raw, timeout=10)
            statuses[status] += 1
        conn.close()

    await asyncio.gather(*(user(keys[i % len(keys)]) for i in range(users)))
    return statuses


async def _aiohttp(url: str, keys: list[str], users: int, seconds: float) -> Counts:
    import aiohttp

    generator = TransactionGenerator()
    statuses: Counts = Counter()
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=users)
    async with aiohttp.ClientSession(url, connector=connector) as session:

        async def user(key: str) -> None:
            headers = {"X-API-Key": key, "Content-Type": "application/json"}
            while time.perf_counter() < deadline:
                async with session.post(
                    "/transactions", data=generator.body(), headers=headers
                ) as response:
                    await response.read()
                    statuses[response.status] += 1

        await asyncio.gather(*(user(keys[i % len(keys)]) for i in range(users)))
    return statuses


async def _httpx(url: str, keys: list[str], users: int, seconds: float) -> Counts:
    import httpx

    generator = TransactionGenerator()
    statuses: Counts = Counter()
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=users, max_keepalive_connections=users)
    async with httpx.AsyncClient(base_url=url, limits=limits) as client:

        async def user(key: str) -> None:
            headers = {"X-API-Key": key, "Content-Type": "application/json"}
            while time.perf_counter() < deadline:
                response = await client.post(
                    "/transactions", content=generator.body(), headers=headers
                )
                statuses[response.status_code] += 1

        await asyncio.gather(*(user(keys[i % len(keys)]) for i in range(users)))
    return statuses


CLIENTS = {"raw": _raw, "aiohttp": _aiohttp, "httpx": _httpx}


def _one(name: str, url: str, keys: list[str], users: int, seconds: float) -> None:
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        cpu, wall = time.process_time(), time.perf_counter()
        statuses = runner.run(CLIENTS[name](url, keys, users, seconds))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    requests = sum(statuses.values())
    print(
        json.dumps(
            {
                "client": name,
                "users": users,
                "requests": requests,
                "statuses": dict(statuses),
                "rps": round(requests / wall, 1),
                "cpu_s": round(cpu, 3),
                "cpu_us_per_request": round(1e6 * cpu / max(1, requests), 1),
            }
        ),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", required=True)
    parser.add_argument("--key", required=True, help="one key, or several separated by commas")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--only", choices=sorted(CLIENTS))
    args = parser.parse_args()
    if args.only:
        _one(args.only, args.api, args.key.split(","), args.users, args.seconds)
        return
    for name in CLIENTS:
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--api",
                args.api,
                "--key",
                args.key,
                "--users",
                str(args.users),
                "--seconds",
                str(args.seconds),
                "--only",
                name,
            ],
            check=False,
        )


if __name__ == "__main__":
    main()
