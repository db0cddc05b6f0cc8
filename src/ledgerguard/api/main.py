"""The app factory: `create_app(settings)` builds one FastAPI app with its own resources.

Gunicorn loads `ledgerguard.api.main:create_app()` in each worker (see `ledgerguard.api.server`);
tests call `create_app(test_settings)` and drive it in-process.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from ledgerguard.api import errors
from ledgerguard.api.fastpath import CreateFastPath
from ledgerguard.api.limits import BodySizeLimit
from ledgerguard.api.metrics import ApiMetrics, MetricsMiddleware
from ledgerguard.api.ratelimit import RateLimiter
from ledgerguard.api.routes import alerts, health, transactions
from ledgerguard.api.services import ApiServices, KeyCache
from ledgerguard.api.shared_ratelimit import SharedAddressLimiter, SharedRateLimiter
from ledgerguard.api.topology import Topology
from ledgerguard.db.writer import TransactionWriter
from ledgerguard.money import FxRates
from ledgerguard.settings import Settings
from ledgerguard.web import mount as web


def create_app(
    settings: Settings | None = None, *, workers: int | None = None, fast_path: bool = True
) -> FastAPI:
    """A new app; `workers` is how many processes share the per-address limit (the per-key
    limit is shared through a file, see `ledgerguard.api.shared_ratelimit`). `fast_path=False`
    leaves out `ledgerguard.api.fastpath` (tests compare the two: same answers).

    Without arguments (how Gunicorn calls it) settings come from the environment / `.env` and the
    worker count from `LEDGERGUARD_API_WORKERS`.
    """
    settings = settings if settings is not None else Settings()
    workers = workers if workers is not None else settings.workers
    metrics = ApiMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        topology = Topology.from_settings(settings)
        await topology.refresh()
        writer = TransactionWriter(
            lambda: topology.primary,
            flavour=lambda: topology.flavour,
            on_outage=topology.refresh,
            queue_size=settings.write_queue_size,
            timeout=settings.write_timeout,
        )
        await writer.start()
        app.state.services = ApiServices(
            settings=settings,
            topology=topology,
            writer=writer,
            fx=FxRates(),
            metrics=metrics,
            limiter=SharedRateLimiter(
                settings.state_dir / "api" / "ratelimit.bin",
                rate_per_second=settings.api_rate_limit,
            ),
            keys=KeyCache(lambda: topology.primary, replica=lambda: topology.replica),
            address_limiter=RateLimiter(
                rate_per_second=settings.api_unauthenticated_rate_limit, workers=workers
            ),
        )
        # the web app's login attempts per address, counted across workers (replaces the
        # per-worker `LoginThrottle` that `web.install` sets for an app without this lifespan)
        app.state.login_throttle = SharedAddressLimiter(
            settings.state_dir / "api" / "logins.bin",
            per_minute=settings.web_login_attempts_per_minute,
        )
        # Everything built so far lives as long as the worker: move it out of the collector's
        # sight, and collect young objects less often. A request allocates many short-lived
        # objects; with the default thresholds the cyclic GC ran every few requests and its
        # pauses showed up in the p99 latency.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
        try:
            yield
        finally:
            app.state.services.limiter.close()
            app.state.login_throttle.close()
            await writer.stop()
            await topology.dispose()

    app = FastAPI(
        title="LedgerGuard transaction API",
        version="0.1.0",
        description="Durable payment transactions on the primary; reads from the GTID replica. "
        "Every data route needs an `X-API-Key` (`ledgerguard apikey create`).",
        lifespan=lifespan,
        # FastAPI's own pages load Swagger UI / ReDoc from a CDN (blank without internet):
        # `ledgerguard.web.mount` serves the vendored copies at the same addresses instead
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.api_docs else None,
    )
    app.include_router(transactions.router)
    app.include_router(alerts.router)
    app.include_router(health.router)
    errors.install(app)
    web.install(app, settings)
    app.add_middleware(BodySizeLimit, max_bytes=settings.api_max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    if fast_path:  # outermost: answers the common valid POST /transactions, hands over the rest
        app.add_middleware(
            CreateFastPath,
            metrics=metrics,
            max_body_bytes=settings.api_max_body_bytes,
            path=transactions.router.prefix,
        )
    return app
