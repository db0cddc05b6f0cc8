"""Drive `POST /transactions` with many virtual users and measure what the API delivers.

Two ways to apply load:

* **closed loop** (default): `users` virtual users, each with its own keep-alive connection,
  send a request, wait for the answer, send the next. Throughput is whatever the API sustains at
  that concurrency; latency is send → last byte of the response.
* **open loop** (`rate`): requests are *scheduled* at `rate` per second whatever the API does, and
  `users` connections send them. Latency is measured from the scheduled time, so a stalled server
  shows up as latency instead of silently lowering the offered load ("coordinated omission"). A
  schedule more than `max_backlog_seconds` behind is not queued further: those requests are
  counted as `missed`.

Only responses that complete inside the measured window (after `warmup`, before the end) count.
The client measures its own CPU time over the same window (`time.process_time`, all threads of
this process), because on a small machine a greedy client distorts what it measures.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ledgerguard.load.client import (
    Endpoint,
    HttpClientError,
    HttpConnection,
    RequestTimeout,
    connect,
)
from ledgerguard.load.generator import GeneratorConfig, TransactionGenerator
from ledgerguard.load.report import LoadReport, Snapshot
from ledgerguard.load.stats import LatencyHistogram

#: Seconds between live snapshots (display refresh and timeline points).
TICK_SECONDS = 0.5
#: How many response bodies are kept per error status, for the report.
ERROR_SAMPLES = 1


@dataclass(frozen=True)
class LoadConfig:
    """What to run; `keys` are spread over the users round-robin (one key per user is fine)."""

    url: str
    keys: tuple[str, ...]
    users: int = 50
    duration: float = 60.0
    rate: float | None = None
    warmup: float = 0.0
    #: seconds over which the users open their first connections, one after another (None:
    #: half the warm-up). Users that all connect in the same millisecond land on whichever
    #: API worker wakes first — a worker accepts every connection waiting — anything from 50+0
    #: to 25+25 over two workers, and the split, not the code, then sets the throughput
    #: (benchmarks/README.md, session 8); clients that arrive over a second spread as they
    #: would in real traffic, each to a worker free to accept it.
    ramp_up: float | None = None
    timeout: float = 10.0
    idempotency_share: float = 0.0
    ok_status: int = 201
    max_backlog_seconds: float = 5.0
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)

    def __post_init__(self) -> None:
        if self.users < 1:
            raise ValueError("users must be at least 1")
        if self.duration <= 0:
            raise ValueError("duration must be positive")
        if self.rate is not None and self.rate <= 0:
            raise ValueError("rate must be positive")
        if not self.keys:
            raise ValueError("at least one API key is needed")
        if self.ramp_up is not None and self.ramp_up < 0:
            raise ValueError("ramp_up must not be negative")

    @property
    def ramp_seconds(self) -> float:
        """The ramp-up in effect: `ramp_up`, or half the warm-up."""
        return self.warmup / 2 if self.ramp_up is None else self.ramp_up


class _Recorder:
    """Counts and latencies of the measured window; hot path is `record()`."""

    def __init__(self, config: LoadConfig, start: float) -> None:
        self.config = config
        self.start = start
        self.measure_from = start + config.warmup
        self.end = self.measure_from + config.duration
        self.interval = LatencyHistogram()
        self.total = LatencyHistogram()
        self.statuses: Counter[str] = Counter()
        self.interval_statuses: Counter[str] = Counter()
        self.error_samples: dict[str, str] = {}
        self.timeline: list[dict[str, Any]] = []
        self.missed = 0
        self.stopping = False
        self.ok_key = str(config.ok_status)
        self.last_roll = start

    def record(self, outcome: str, started: float | None, body: bytes = b"") -> None:
        """Count one outcome; `started=None` for failures that have no latency (connect)."""
        now = time.perf_counter()
        if now < self.measure_from or now > self.end:
            return
        if started is not None:
            self.interval.record(now - started)
        self.interval_statuses[outcome] += 1
        if outcome != self.ok_key and outcome not in self.error_samples:
            self.error_samples[outcome] = body[:300].decode("utf-8", "replace")

    def roll(self, now: float) -> tuple[LatencyHistogram, Counter[str], float]:
        """Close the current interval: fold it into the totals; return it and its length (s)."""
        interval, statuses = self.interval, self.interval_statuses
        self.interval, self.interval_statuses = LatencyHistogram(), Counter()
        self.total.merge(interval)
        self.statuses.update(statuses)
        span, self.last_roll = now - self.last_roll, now
        return interval, statuses, max(span, 1e-6)


class _Requests:
    """Pre-encoded request bytes: a fixed head per API key, the body and its length appended."""

    def __init__(self, config: LoadConfig, endpoint: Endpoint) -> None:
        self._generator = TransactionGenerator(config.generator)
        self._share = config.idempotency_share
        self._heads = [
            (
                f"POST {endpoint.base_path}/transactions HTTP/1.1\r\n"
                f"Host: {endpoint.host_header}\r\n"
                f"X-API-Key: {key}\r\n"
                "Content-Type: application/json\r\n"
            ).encode("latin-1")
            for key in config.keys
        ]

    def build(self, user: int) -> bytes:
        body = self._generator.body()
        head = self._heads[user % len(self._heads)]
        extra = b""
        if self._share and self._generator.chance(self._share):
            extra = b"Idempotency-Key: " + os.urandom(16).hex().encode() + b"\r\n"
        return b"%sContent-Length: %d\r\n%s\r\n%s" % (head, len(body), extra, body)


async def run_load(
    config: LoadConfig,
    *,
    on_tick: Callable[[Snapshot], None] | None = None,
    on_window: Callable[[bool], None] | None = None,
) -> LoadReport:
    """Run the load described by `config`.

    `on_tick` sees a `Snapshot` every tick; `on_window(True)` / `on_window(False)` are called
    where the measured window starts and ends (e.g. to read other processes' CPU counters over
    exactly the same window as the client's).
    """
    endpoint = Endpoint.parse(config.url)
    # fail fast with a clear message when nothing listens, before any user starts
    probe = await connect(endpoint, connect_timeout=config.timeout)
    probe.close()
    requests = _Requests(config, endpoint)
    recorder = _Recorder(config, time.perf_counter())
    queue: asyncio.Queue[float] | None = asyncio.Queue() if config.rate else None
    tasks = [
        asyncio.create_task(_user(i, endpoint, requests, recorder, config, queue))
        for i in range(config.users)
    ]
    if queue is not None:
        tasks.append(asyncio.create_task(_schedule(queue, recorder, config)))
    cpu_start = cpu_end = time.process_time()
    cpu_started = config.warmup <= 0
    if cpu_started and on_window is not None:
        on_window(True)
    # ticks are anchored on the start of the measured window, so one tick starts the CPU clock
    next_tick = recorder.measure_from - TICK_SECONDS * math.ceil(config.warmup / TICK_SECONDS)
    try:
        while True:
            next_tick += TICK_SECONDS
            await asyncio.sleep(max(0.0, next_tick - time.perf_counter()))
            now = time.perf_counter()
            if not cpu_started and now >= recorder.measure_from:
                cpu_start, cpu_started = time.process_time(), True
                if on_window is not None:
                    on_window(True)
            interval, statuses, span = recorder.roll(now)
            if now > recorder.measure_from:
                _timeline_point(recorder, interval, statuses, now, span)
            if on_tick is not None:
                on_tick(_snapshot(recorder, interval, statuses, now, span, cpu_start, cpu_started))
            if now >= recorder.end or all(task.done() for task in tasks):
                break
    finally:
        cpu_end = time.process_time()
        if cpu_started and on_window is not None:
            on_window(False)
        recorder.stopping = True
        if queue is not None:
            for _ in range(config.users):
                queue.put_nowait(-1.0)  # wake users waiting for a scheduled request
        await _drain(tasks, grace=min(config.timeout, 5.0))
    recorder.roll(time.perf_counter())
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
    window = max(0.0, min(time.perf_counter(), recorder.end) - recorder.measure_from)
    return LoadReport(
        config=config,
        window_seconds=window,
        latency=recorder.total,
        statuses=recorder.statuses,
        error_samples=recorder.error_samples,
        cpu_seconds=cpu_end - cpu_start if cpu_started else 0.0,
        timeline=recorder.timeline,
        missed=recorder.missed,
        event_loop=type(asyncio.get_running_loop()).__module__.split(".")[0],
    )


async def _user(
    index: int,
    endpoint: Endpoint,
    requests: _Requests,
    recorder: _Recorder,
    config: LoadConfig,
    queue: asyncio.Queue[float] | None,
) -> None:
    """One virtual user: its own keep-alive connection, reconnecting after failures."""
    conn: HttpConnection | None = None
    timeout = config.timeout
    if config.ramp_seconds and index:
        await asyncio.sleep(config.ramp_seconds * index / config.users)
    try:
        while not recorder.stopping:
            scheduled = await queue.get() if queue is not None else None
            if recorder.stopping:
                break
            if conn is None or conn.closed:
                try:
                    conn = await connect(endpoint, connect_timeout=timeout)
                except HttpClientError:
                    recorder.record("connect_error", None)
                    conn = None
                    await asyncio.sleep(0.1)  # a down server must not become a busy loop
                    continue
            raw = requests.build(index)
            started = time.perf_counter() if scheduled is None else scheduled
            try:
                status, body = await conn.request(raw, timeout=timeout)
            except RequestTimeout:
                recorder.record("timeout", started)
                conn = None
            except HttpClientError:
                recorder.record("disconnected", None)
                conn = None
                await asyncio.sleep(0.05)  # nor a server that drops every connection
            else:
                recorder.record(str(status), started, body)
    finally:
        if conn is not None:
            conn.close()


async def _schedule(queue: asyncio.Queue[float], recorder: _Recorder, config: LoadConfig) -> None:
    """Put the intended send times of an open-loop schedule on `queue`."""
    assert config.rate
    interval = 1.0 / config.rate
    backlog_limit = max(config.users, int(config.rate * config.max_backlog_seconds))
    due = recorder.start
    while not recorder.stopping:
        now = time.perf_counter()
        if now >= recorder.end:
            break
        while due <= now:
            if queue.qsize() < backlog_limit:
                queue.put_nowait(due)
            elif due >= recorder.measure_from:
                recorder.missed += 1
            due += interval
        await asyncio.sleep(max(0.0005, min(0.005, due - now)))


async def _drain(tasks: list[asyncio.Task[None]], *, grace: float) -> None:
    """Let in-flight requests finish (they are not counted), then cancel what still waits."""
    _, pending = await asyncio.wait(tasks, timeout=grace)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)


def _timeline_point(
    recorder: _Recorder,
    interval: LatencyHistogram,
    statuses: Counter[str],
    now: float,
    span: float,
) -> None:
    ok = statuses.get(recorder.ok_key, 0)
    p = interval.percentiles((50.0, 99.0))
    recorder.timeline.append(
        {
            "t": round(now - recorder.measure_from, 2),
            "tps": round(ok / span, 1),
            "p50_ms": round(p[50.0] / 1000, 3) if p else None,
            "p99_ms": round(p[99.0] / 1000, 3) if p else None,
            "errors": sum(statuses.values()) - ok,
        }
    )


def _snapshot(
    recorder: _Recorder,
    interval: LatencyHistogram,
    statuses: Counter[str],
    now: float,
    span: float,
    cpu_start: float,
    cpu_started: bool,
) -> Snapshot:
    measuring = now >= recorder.measure_from
    measured = max(1e-9, min(now, recorder.end) - recorder.measure_from)
    ok_total = recorder.statuses.get(recorder.ok_key, 0)
    cpu = time.process_time() - cpu_start if cpu_started else 0.0
    return Snapshot(
        elapsed=now - recorder.start,
        duration=recorder.config.duration,
        warmup=recorder.config.warmup,
        measuring=measuring,
        interval_tps=statuses.get(recorder.ok_key, 0) / span,
        total_tps=ok_total / measured if measuring else 0.0,
        interval_latency_ms=interval.summary_ms((50.0, 95.0, 99.0)),
        total_latency_ms=recorder.total.summary_ms((50.0, 95.0, 99.0)),
        statuses=dict(recorder.statuses),
        errors=sum(recorder.statuses.values()) - ok_total,
        client_cpu_percent=100 * cpu / measured if measuring else 0.0,
        users=recorder.config.users,
        rate=recorder.config.rate,
        missed=recorder.missed,
    )


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (it comes with `uvicorn[standard]`): ~2x cheaper per request."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_load_sync(
    config: LoadConfig,
    *,
    on_tick: Callable[[Snapshot], None] | None = None,
    on_window: Callable[[bool], None] | None = None,
) -> LoadReport:
    """`run_load` on a fresh (uv)loop, for callers that are not async (the CLI, bench)."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(run_load(config, on_tick=on_tick, on_window=on_window))
