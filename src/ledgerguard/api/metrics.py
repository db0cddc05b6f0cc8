"""Prometheus metrics of the API, correct with several Gunicorn workers.

With `PROMETHEUS_MULTIPROC_DIR` set (the `ledgerguard api` server sets it), every worker writes
its samples to files there and `/metrics` aggregates them all (prometheus-client multiprocess
mode), so a scrape that lands on any worker sees the whole server. Without it (tests, a single
process) a private registry is used. Metric names are part of the contract with the alert rules
and dashboards in `deploy/`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prom_multiprocess

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


#: Scope key: when a request reached the API (`time.perf_counter()`), set by the fast path
#: before it hands a request over (see `ledgerguard.api.fastpath`).
REQUEST_START = "ledgerguard.request_start"


def multiprocess_enabled() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class ApiMetrics:
    """The API's collectors, registered in `registry` (a fresh one per app in tests)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        # in multiprocess mode, values live in files; the collectors still need a registry
        kwargs: dict[str, Any] = {"registry": None if multiprocess_enabled() else self.registry}
        self.requests = Counter(
            "ledgerguard_http_requests_total",
            "HTTP requests by method, route template and status code.",
            ["method", "route", "status"],
            **kwargs,
        )
        self.latency = Histogram(
            "ledgerguard_http_request_duration_seconds",
            "HTTP request latency by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            **kwargs,
        )
        self.pool_in_use = Gauge(
            "ledgerguard_db_pool_connections_in_use",
            "Database connections checked out of the pool, by server.",
            ["server"],
            multiprocess_mode="livesum",
            **kwargs,
        )
        self.committed = Counter(
            "ledgerguard_transactions_committed_total",
            "Transactions durably committed on the primary.",
            **kwargs,
        )
        self.amount_usd = Counter(
            "ledgerguard_transactions_amount_usd_total",
            "Sum of amount_usd of committed transactions.",
            **kwargs,
        )

        # the children of `requests` and `latency` by (method, route, status): `labels()` costs
        # a lock and label checks on every call, twice per request
        self._by_labels: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency (`route`: the route's template)."""
        children = self._by_labels.get((method, route, status))
        if children is None:
            children = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
            self._by_labels[(method, route, status)] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> tuple[bytes, str]:
        """The exposition text: every worker's samples in multiprocess mode."""
        if multiprocess_enabled():
            registry = CollectorRegistry()
            prom_multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Counts and times every HTTP request by its route *template* (bounded label values)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # a request the fast path handed over was timed from its arrival there
        start = scope.pop(REQUEST_START, None) or time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe_request(
                scope["method"], template, status, time.perf_counter() - start
            )
