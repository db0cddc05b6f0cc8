"""Liveness, readiness and metrics: no API key needed (probes and Prometheus call them)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, Security, status
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from ledgerguard.api.deps import Services, api_key_header, current_key
from ledgerguard.api.schemas import Health, Readiness
from ledgerguard.api.services import ApiServices
from ledgerguard.db.consistency import gtid_gap
from ledgerguard.db.dialect import applied_gtids_query, binlog_gtids_query

router = APIRouter(tags=["health"])

#: Seconds each server gets to answer the readiness check.
READY_CHECK_TIMEOUT = 2.0


@router.get("/health", response_model=Health)
async def health() -> Health:
    """The process is alive (no database check; see /ready)."""
    return Health(status="ok")


@router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
async def ready(services: Services, response: Response) -> Readiness:
    """Primary reachable (else 503: writes would fail), replica reachable and its GTID gap.

    Unauthenticated, so it must cost almost nothing: the answer is computed at most once per
    `READY_CACHE_SECONDS` per worker (concurrent callers share one check), and each server gets
    at most `READY_CHECK_TIMEOUT` seconds, so a stalled server cannot hold probes.
    """
    readiness = await services.readiness.get(lambda: _check(services))
    if not readiness.primary:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        response.headers["Retry-After"] = "1"
    return readiness


async def _ask(engine: AsyncEngine, sql: str) -> tuple[bool, object]:
    async def query() -> object:
        async with engine.connect() as conn:
            return (await conn.exec_driver_sql(sql)).scalar()

    try:
        return True, await asyncio.wait_for(query(), READY_CHECK_TIMEOUT)
    except (TimeoutError, SQLAlchemyError, OSError):
        return False, None


async def _check(services: ApiServices) -> Readiness:
    await services.topology.refresh()  # follow a failover even without failed requests
    (primary_ok, primary_pos), (replica_ok, replica_pos) = await asyncio.gather(
        _ask(services.primary, binlog_gtids_query(services.flavour).sql),
        _ask(services.replica, applied_gtids_query(services.flavour).sql),
    )
    return Readiness(
        status="ready" if primary_ok else "unavailable",
        primary=primary_ok,
        replica=replica_ok,
        # None for MySQL: its UUID sets have no sequence to subtract (see `gtid_gap`)
        replica_gtid_gap=gtid_gap(str(primary_pos), str(replica_pos))
        if primary_ok and replica_ok
        else None,
        epoch=services.topology.epoch,
    )


async def metrics_reader(
    request: Request, plain: Annotated[str | None, Security(api_key_header)]
) -> None:
    """`/metrics` is for Prometheus: callers from `LEDGERGUARD_METRICS_ALLOW_FROM` (loopback by
    default) need no key, anyone else a key with the `metrics` scope (401/403 otherwise), so
    figures never leak past a reverse proxy."""
    client = request.client.host if request.client else ""
    services: ApiServices = request.app.state.services
    with contextlib.suppress(ValueError):
        address = ipaddress.ip_address(client)
        if any(address in network for network in services.metrics_networks):
            return
    key = await current_key(request, plain)
    if not key.allows("metrics"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this API key lacks the scope 'metrics'")
    if key.merchant_id is not None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"this API key is limited to merchant {key.merchant_id}; /metrics covers every "
            "merchant",
        )


@router.get("/metrics", include_in_schema=False, dependencies=[Depends(metrics_reader)])
async def metrics(services: Services) -> Response:
    """Prometheus exposition (all workers' samples in multiprocess mode)."""
    for server, engine in (("primary", services.primary), ("replica", services.replica)):
        services.metrics.pool_in_use.labels(server).set(engine.pool.checkedout())
    body, content_type = services.metrics.render()
    return Response(body, media_type=content_type)
