"""Liveness, readiness and metrics: no API key needed (probes and Prometheus call them)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from ledgerguard.api.deps import Services
from ledgerguard.api.schemas import Health, Readiness
from ledgerguard.db.consistency import gtid_gap
from ledgerguard.db.dialect import Statement, applied_gtids_query, binlog_gtids_query

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
async def health() -> Health:
    """The process is alive (no database check; see /ready)."""
    return Health(status="ok")


async def _position(engine: AsyncEngine, query: Statement) -> tuple[bool, Any]:
    """(reachable, GTID position) of one server; unreachable is an answer, not an error."""
    try:
        async with engine.connect() as conn:
            return True, (await conn.exec_driver_sql(query.sql)).scalar()
    except (SQLAlchemyError, OSError):
        return False, None


@router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
async def ready(services: Services, response: Response) -> Readiness:
    """Primary reachable (else 503: writes would fail), replica reachable and its GTID gap."""
    primary_ok, primary_pos = await _position(
        services.primary, binlog_gtids_query(services.flavour)
    )
    replica_ok, replica_pos = await _position(
        services.replica, applied_gtids_query(services.flavour)
    )
    if not primary_ok:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        response.headers["Retry-After"] = "1"
    return Readiness(
        status="ready" if primary_ok else "unavailable",
        primary=primary_ok,
        replica=replica_ok,
        # None for MySQL: its UUID sets have no sequence to subtract (see `gtid_gap`)
        replica_gtid_gap=gtid_gap(str(primary_pos), str(replica_pos))
        if primary_ok and replica_ok
        else None,
    )


@router.get("/metrics", include_in_schema=False)
async def metrics(services: Services) -> Response:
    """Prometheus exposition (all workers' samples in multiprocess mode)."""
    for server, engine in (("primary", services.primary), ("replica", services.replica)):
        services.metrics.pool_in_use.labels(server).set(engine.pool.checkedout())
    body, content_type = services.metrics.render()
    return Response(body, media_type=content_type)
