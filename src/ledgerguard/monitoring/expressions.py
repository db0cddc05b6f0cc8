"""Every PromQL expression the dashboards use, ready to send to Prometheus.

The dashboards are JSON that only Grafana reads, so a typo in a panel's query shows up as an
empty graph on the day it is needed. Tests (and anyone debugging a panel) take the expressions
from here and ask a real Prometheus to evaluate them.

**One home for the panel queries: `DASHBOARDS_DIR`, package data of `ledgerguard.monitoring`.**
The Grafana dashboard JSON files live inside the package (not under `deploy/`), so a wheel
install carries them: the web app's operations page reads its panels' PromQL from them, and
Grafana is provisioned from the very same files (`deploy/docker-compose.yml` mounts this folder
at `/var/lib/grafana/dashboards`). Moving the files was simpler than generating one format
from the other and testing that the two agree: there is nothing to keep in step.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Values for Grafana's built-in and dashboard variables that make a panel query plain PromQL.
GRAFANA_VARIABLES = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "1h",
    "role": ".+",
}
#: The Grafana dashboards (package data; see the module docstring).
DASHBOARDS_DIR = Path(__file__).resolve().parent / "dashboards"
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


@dataclass(frozen=True)
class PanelQuery:
    """One query of one dashboard panel."""

    dashboard: str
    panel: str
    expr: str

    @property
    def promql(self) -> str:
        """The query with Grafana variables replaced by representative values."""
        return grafana_to_promql(self.expr)


def grafana_to_promql(expr: str) -> str:
    """Replace `$__rate_interval`, `${role}` and friends; unknown variables raise KeyError."""

    def value(match: re.Match[str]) -> str:
        return GRAFANA_VARIABLES[match.group(1) or match.group(2)]

    return _VARIABLE.sub(value, expr)


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def dashboard_queries(
    dashboards_dir: Path = DASHBOARDS_DIR,
) -> list[PanelQuery]:
    """All panel queries of every dashboard JSON file in `dashboards_dir`."""
    queries = []
    for path in sorted(dashboards_dir.glob("*.json")):
        board = json.loads(path.read_text(encoding="utf-8"))
        for panel in _panels(board.get("panels", [])):
            for target in panel.get("targets", []):
                if target.get("expr"):
                    queries.append(
                        PanelQuery(board["title"], panel.get("title", "?"), target["expr"])
                    )
    return queries
