"""CPU per POST /transactions of the API app alone: no HTTP server, no load client (issue #13).

The app built by `create_app` (lifespan, real writer, the configured cluster) is driven through
ASGI by `--users` concurrent callers in this one process; CPU time (`process_time`) over the
measured requests, after as many unmeasured ones, divided by their number. On a shared machine
this is steadier than `bench ingest`'s per-process figures (no other process in the measured
path), and `--no-fast-path` measures the same code with every request through FastAPI's route.
Start the cluster first (`ledgerguard cluster up`, from the folder whose `.env` names it) and
create keys (`ledgerguard bench ingest` leaves them in `<state dir>/bench-api-keys`):

    .venv/bin/python benchmarks/api_inprocess_cpu.py --requests 10000 > fast.json
    .venv/bin/python benchmarks/api_inprocess_cpu.py --requests 10000 --no-fast-path > route.json
    # another version of the code on the same venv and cluster
    PYTHONPATH=<other worktree>/src .venv/bin/python benchmarks/api_inprocess_cpu.py

JSON on stdout. Prometheus runs in multiprocess mode (a temporary folder), as under Gunicorn.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from typing import Any


def _scope(body: bytes, key: str, client_port: int) -> dict[str, Any]:
    """What Uvicorn passes for `POST /transactions` with a JSON body and an API key."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", client_port),
        "scheme": "http",
        "method": "POST",
        "root_path": "",
        "path": "/transactions",
        "raw_path": b"/transactions",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"x-api-key", key.encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "state": {},
    }


async def _post(app: Any, body: bytes, key: str, client_port: int) -> int:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(_scope(body, key, client_port), receive, send)
    return sent[0]["status"]


async def run(requests: int, users: int, fast_path: bool, keys: list[str]) -> dict[str, Any]:
    from ledgerguard.api.main import create_app
    from ledgerguard.load.generator import GeneratorConfig, TransactionGenerator
    from ledgerguard.settings import Settings

    # code from before the fast path has no `fast_path` argument
    app = create_app(Settings(), workers=1, **({} if fast_path else {"fast_path": False}))
    generator = TransactionGenerator(GeneratorConfig())
    async with app.router.lifespan_context(app):
        writer = app.state.services.writer

        async def phase() -> tuple[float, float, int]:
            left = iter(range(requests))
            statuses: dict[int, int] = {}

            async def user(index: int) -> None:
                for _ in left:
                    status = await _post(app, generator.body(), keys[index % len(keys)], index)
                    statuses[status] = statuses.get(status, 0) + 1

            commits = writer.commits
            cpu, wall = time.process_time(), time.perf_counter()
            await asyncio.gather(*(user(i) for i in range(users)))
            if set(statuses) != {201}:
                raise SystemExit(f"not every request was created: {statuses}")
            return time.process_time() - cpu, time.perf_counter() - wall, writer.commits - commits

        await phase()  # warm-up: connections, caches, key lookups
        cpu, wall, commits = await phase()
    return {
        "benchmark": "api in-process CPU per POST /transactions",
        "fast_path": fast_path,
        "requests": requests,
        "users": users,
        "cpu_us_per_request": round(1e6 * cpu / requests, 1),
        "wall_us_per_request": round(1e6 * wall / requests, 1),
        "rows_per_commit": round(requests / max(1, commits), 2),
        "loadavg": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000, help="measured requests")
    parser.add_argument("--users", type=int, default=50, help="concurrent callers")
    parser.add_argument("--no-fast-path", action="store_true", help="every request via the route")
    parser.add_argument("--key-file", help="API keys, one a line (default: the bench's keys)")
    args = parser.parse_args()
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="lg-metrics-"))
    from ledgerguard.settings import Settings

    key_file = args.key_file or Settings().state_dir / "bench-api-keys"
    keys = [line.strip() for line in open(key_file) if line.strip()]  # noqa: SIM115
    import uvloop

    report = uvloop.run(run(args.requests, args.users, not args.no_fast_path, keys))
    json.dump(report, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
