"""`/review/overview` (charts), `/review/reports` (the day's CSV files), `/review/operations`."""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime
from pathlib import Path as FsPath
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, HTTPException, Path, Request, status
from fastapi.responses import FileResponse, JSONResponse, Response

from ledgerguard.db.review_stats import overview
from ledgerguard.monitoring.config import reachable_host
from ledgerguard.monitoring.expressions import dashboard_queries
from ledgerguard.web.auth import CurrentUser
from ledgerguard.web.backend import WebBackend, on_replica
from ledgerguard.web.templating import render

router = APIRouter(tags=["web"], include_in_schema=False)

#: The Grafana panels the operations page redraws (dashboard title -> panel titles); a panel
#: whose title mentions the scorer is added when a dashboard has one.
OPERATIONS_PANELS = (
    "Transactions per second (TPS)",
    "API latency p50 / p95 / p99",
    "API error rate",
    "Replication lag (heartbeat)",
)
OPERATIONS_WINDOW_S = 3600
OPERATIONS_STEP_S = 15


@router.get("/overview")
async def overview_page(request: Request, backend: WebBackend, user: CurrentUser) -> Response:
    figures = await on_replica(backend, overview, now=datetime.now(UTC))
    return render(
        request,
        "overview.html",
        figures=figures,
        figures_json=json.dumps(figures.as_json()).replace("<", "\\u003c"),
    )


def _reports(directory: FsPath) -> list[tuple[str, int, datetime]]:
    if not directory.is_dir():
        return []
    files = [p for p in directory.glob("*.csv") if p.is_file()]
    return sorted(
        ((p.name, p.stat().st_size, datetime.fromtimestamp(p.stat().st_mtime, UTC)) for p in files),
        key=lambda item: item[0],
        reverse=True,
    )


@router.get("/reports")
async def reports_page(request: Request, backend: WebBackend, user: CurrentUser) -> Response:
    return render(request, "reports.html", reports=_reports(backend.settings.reports_dir))


@router.get("/reports/{name}")
async def download_report(
    backend: WebBackend,
    user: CurrentUser,
    name: Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]+\.csv$")],
) -> Response:
    """Only a file the listing shows (no path from the request ever reaches the disk)."""
    known = {item[0] for item in _reports(backend.settings.reports_dir)}
    if name not in known:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no report named {name}")
    return FileResponse(backend.settings.reports_dir / name, media_type="text/csv", filename=name)


def operations_queries() -> list[dict[str, Any]]:
    """The panels' PromQL, taken from the Grafana dashboards (one definition of each query)."""
    panels: dict[str, list[str]] = {}
    for query in dashboard_queries():
        wanted = query.panel in OPERATIONS_PANELS or "scorer" in query.panel.lower()
        if wanted and query.dashboard == "LedgerGuard overview":
            panels.setdefault(query.panel, []).append(query.promql)
    return [{"title": title, "queries": exprs} for title, exprs in panels.items()]


@router.get("/operations")
async def operations_page(request: Request, backend: WebBackend, user: CurrentUser) -> Response:
    return render(
        request,
        "operations.html",
        panels=operations_queries(),
        prometheus=_prometheus_url(backend),
    )


def _prometheus_url(backend: WebBackend) -> str:
    settings = backend.settings
    return f"http://{reachable_host(settings.bind_address)}:{settings.prometheus_port}"


def _legend(metric: dict[str, str], expr: str) -> str:
    """A short series name: its distinguishing labels, or the quantile, or the panel's sum."""
    shown = {k: v for k, v in metric.items() if k not in ("__name__", "instance")}
    if shown:
        return ", ".join(f"{k}={v}" for k, v in shown.items())
    if expr.startswith("histogram_quantile("):
        return f"p{float(expr.split('(')[1].split(',')[0]) * 100:g}"
    return "total"


def _finite(value: str) -> float | None:
    """Prometheus sends NaN/Inf (e.g. a quantile of no requests); JSON has no such numbers."""
    number = float(value)
    return number if math.isfinite(number) else None


@router.get("/operations/data")
async def operations_data(backend: WebBackend, user: CurrentUser) -> JSONResponse:
    """Each panel's series for the last hour, from Prometheus' HTTP API (`query_range`)."""
    end = time.time()
    params = {"start": end - OPERATIONS_WINDOW_S, "end": end, "step": OPERATIONS_STEP_S}
    panels = []
    try:
        async with httpx.AsyncClient(base_url=_prometheus_url(backend), timeout=5) as client:
            for panel in operations_queries():
                series = []
                for expr in panel["queries"]:
                    answer = await client.get(
                        "/api/v1/query_range", params={"query": expr, **params}
                    )
                    answer.raise_for_status()
                    for item in answer.json()["data"]["result"]:
                        label = _legend(item["metric"], expr)
                        series.append(
                            {"label": label, "points": [[t, _finite(v)] for t, v in item["values"]]}
                        )
                panels.append({"title": panel["title"], "series": series})
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        return JSONResponse(
            {"error": f"Prometheus at {_prometheus_url(backend)} did not answer: {exc}"},
            status_code=status.HTTP_502_BAD_GATEWAY,
        )
    return JSONResponse({"panels": panels})
