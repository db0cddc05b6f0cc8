"""`ledgerguard bench api-cpu`: CPU per POST /transactions of the API app alone (issue #13).

The app built by `create_app` (lifespan, real writer, the configured cluster) is driven through
ASGI by `users` concurrent callers in this one process, no HTTP server and no load client; CPU
time (`process_time`) over the measured requests, after as many unmeasured ones, divided by
their number. On a shared machine this is steadier than `bench ingest`'s per-process figures (no
other process in the measured path); `fast_path=False` measures the same code with every
request through FastAPI's route. Prometheus runs in multiprocess mode (a temporary folder), as
under Gunicorn. Another version of the code on the same venv and cluster:
`PYTHONPATH=<other worktree>/src ledgerguard bench api-cpu` (a version that has this command;
for older code, that commit's `benchmarks/api_inprocess_cpu.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledgerguard.load.bench.ceiling import BenchError
from ledgerguard.load.bench.ingest import bench_keys
from ledgerguard.load.bench.servers import Progress, running_cluster
from ledgerguard.load.runner import new_event_loop
from ledgerguard.load.target import keys_from_file
from ledgerguard.settings import Settings

_MULTIPROC = "PROMETHEUS_MULTIPROC_DIR"


@dataclass(frozen=True)
class ApiCpuOptions:
    requests: int = 10_000
    users: int = 50
    fast_path: bool = True
    #: API keys, one a line (None: the bench's keys, `<state dir>/bench-api-keys`, made if missing)
    key_file: Path | None = None
    #: also count function calls per request (`sys.setprofile`: the CPU figures then mean little)
    count_calls: bool = False


def bench_key_list(settings: Settings, key_file: Path | None, count: int) -> tuple[str, ...]:
    """The keys of a bench that drives the API in-process: `key_file`'s, or `count` bench keys."""
    return keys_from_file(key_file) if key_file else bench_keys(settings, count=count)


def run_api_cpu(
    settings: Settings, options: ApiCpuOptions, *, progress: Progress
) -> dict[str, Any]:
    """The measurement (see the module docstring); the report."""
    cluster, started_cluster = running_cluster(settings, progress)
    try:
        keys = bench_key_list(settings, options.key_file, options.users)
        progress(f"{options.users} in-process callers, {options.requests:,} requests twice")
        with multiprocess_metrics(), asyncio.Runner(loop_factory=new_event_loop) as runner:
            cpu, wall, commits, calls = runner.run(_measure(settings, options, keys))
    finally:
        if started_cluster:
            cluster.down(progress=progress)
    requests = options.requests
    return {
        "benchmark": "api in-process CPU per POST /transactions",
        "fast_path": options.fast_path,
        "requests": requests,
        "users": options.users,
        "cpu_us_per_request": round(1e6 * cpu / requests, 1),
        "wall_us_per_request": round(1e6 * wall / requests, 1),
        "rows_per_commit": round(requests / max(1, commits), 2),
        **({"python_calls_per_request": round(calls / requests, 1)} if options.count_calls else {}),
        "loadavg": os.getloadavg(),
    }


@contextlib.contextmanager
def multiprocess_metrics() -> Iterator[None]:
    """Prometheus' multiprocess mode in a temporary folder, as under Gunicorn, unless the
    environment already names one; the environment is restored afterwards."""
    if os.environ.get(_MULTIPROC):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="lg-metrics-") as folder:
        os.environ[_MULTIPROC] = folder
        try:
            yield
        finally:
            del os.environ[_MULTIPROC]


class _CallCounter:
    """Python and C function calls made while installed (`sys.setprofile`): a count that does
    not depend on how busy the machine is, unlike CPU time."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, frame: Any, event: str, arg: Any) -> None:
        if event == "call" or event == "c_call":
            self.calls += 1


async def _measure(
    settings: Settings, options: ApiCpuOptions, keys: tuple[str, ...]
) -> tuple[float, float, int, int]:
    """A warm-up phase, then the measured one: (CPU seconds, wall seconds, writer commits,
    function calls, counted with `count_calls` only)."""
    from ledgerguard.api.main import create_app
    from ledgerguard.load.generator import GeneratorConfig, TransactionGenerator

    app = create_app(settings, workers=1, fast_path=options.fast_path)
    generator = TransactionGenerator(GeneratorConfig())
    async with app.router.lifespan_context(app):
        writer = app.state.services.writer

        async def phase(counter: _CallCounter | None = None) -> tuple[float, float, int]:
            left = iter(range(options.requests))
            statuses: dict[int, int] = {}

            async def user(index: int) -> None:
                for _ in left:
                    status = await _post(app, generator.body(), keys[index % len(keys)], index)
                    statuses[status] = statuses.get(status, 0) + 1

            commits = writer.commits
            cpu, wall = time.process_time(), time.perf_counter()
            if counter is not None:
                sys.setprofile(counter)
            try:
                await asyncio.gather(*(user(i) for i in range(options.users)))
            finally:
                sys.setprofile(None)
            if set(statuses) != {201}:
                raise BenchError(f"not every request was created: {statuses}")
            return time.process_time() - cpu, time.perf_counter() - wall, writer.commits - commits

        await phase()  # warm-up: connections, caches, key lookups
        counter = _CallCounter() if options.count_calls else None
        cpu, wall, commits = await phase(counter)
        return cpu, wall, commits, counter.calls if counter else 0


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
