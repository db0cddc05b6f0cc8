"""Liveness, readiness and metrics: no API key needed (probes and Prometheus call them)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from sqlalchemy.exc import SQLAlchemyError

from ledgerguard.api.deps import Services
from ledgerguard.api.schemas import Health, Readiness
from ledgerguard.cluster.replication import Flavour
from ledgerguard.db.consistency import gtid_gap

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
async def health() -> Health:
    """The process is alive (no database check; see /ready)."""
    return Health(status="ok")


@router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
async def ready(services: Services, response: Response) -> Readiness:
    """Primary reachable (else 503: writes would fail), replica reachable and its GTID gap."""
    mariadb = services.flavour is Flavour.MARIADB
    primary_pos = replica_pos = None
    primary_ok = replica_ok = False
    try:
        async with services.primary.connect() as conn:
            sql = "SELECT @@GLOBAL.gtid_binlog_pos" if mariadb else "SELECT 1"
            primary_pos = (await conn.exec_driver_sql(sql)).scalar()
        primary_ok = True
    except (SQLAlchemyError, OSError):
        pass
    try:
        async with services.replica.connect() as conn:
            sql = "SELECT @@GLOBAL.gtid_slave_pos" if mariadb else "SELECT 1"
            replica_pos = (await conn.exec_driver_sql(sql)).scalar()
        replica_ok = True
    except (SQLAlchemyError, OSError):
        pass
    if not primary_ok:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        response.headers["Retry-After"] = "1"
    return Readiness(
        status="ready" if primary_ok else "unavailable",
        primary=primary_ok,
        replica=replica_ok,
        replica_gtid_gap=gtid_gap(str(primary_pos), str(replica_pos))
        if mariadb and primary_ok and replica_ok
        else None,
    )


@router.get("/metrics", include_in_schema=False)
async def metrics(services: Services) -> Response:
    """Prometheus exposition (all workers' samples in multiprocess mode)."""
    for server, engine in (("primary", services.primary), ("replica", services.replica)):
        services.metrics.pool_in_use.labels(server).set(engine.pool.checkedout())
    body, content_type = services.metrics.render()
    return Response(body, media_type=content_type)
