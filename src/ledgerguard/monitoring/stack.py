"""`ledgerguard status`: the whole local stack at a glance, gathered cheaply.

Every component is probed on its own with short timeouts and its failure is recorded, never
raised: a status command must answer *especially* when things are down. Probes: the cluster
through `LocalCluster.status()` (root over the local sockets), the replication heartbeat read on
the replica, the API's `/ready`, Airflow's `/api/v2/monitor/health`, the streaming scorer, the
binlog archiver, our monitoring processes, and Prometheus' own view (targets up, alerts firing).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import httpx
import pymysql

from ledgerguard.cluster.admin import admin_connection
from ledgerguard.cluster.heartbeat import heartbeat_age
from ledgerguard.cluster.local import LocalCluster
from ledgerguard.cluster.status import ClusterStatus
from ledgerguard.db.consistency import gtid_gap
from ledgerguard.errors import LedgerGuardError
from ledgerguard.monitoring.config import reachable_host
from ledgerguard.monitoring.local import LocalMonitoring
from ledgerguard.settings import Settings

#: Seconds each HTTP probe may take; a component slower than this counts as down.
PROBE_TIMEOUT = 1.5
#: Heartbeat lag above which replication is reported unhealthy (the ReplicationLagHigh threshold).
LAG_LIMIT_SECONDS = 30.0


@dataclass
class Component:
    """One line of the status table."""

    up: bool
    address: str
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _get_json(url: str) -> tuple[int, Any]:
    """Status code and JSON body (None when not JSON) of a GET."""
    response = httpx.get(url, timeout=PROBE_TIMEOUT)
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, None


def _error(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


# --- cluster ------------------------------------------------------------------------------------
def _cluster(
    settings: Settings, cluster: LocalCluster
) -> tuple[ClusterStatus | None, dict[str, Component]]:
    primary = f"{settings.primary_host}:{settings.primary_port}"
    replica = f"{settings.replica_host}:{settings.replica_port}"
    try:
        status = cluster.status()
    except LedgerGuardError as exc:
        return None, {
            "primary": Component(False, primary, _error(exc)),
            "replica": Component(False, replica, _error(exc)),
        }
    p, r = status.primary, status.replica
    return status, {
        "primary": Component(p.up, primary, p.version if p.up else p.error),
        "replica": Component(
            r.up,
            replica,
            (f"{r.version}, read only" if r.read_only else f"{r.version}, WRITABLE")
            if r.up
            else r.error,
        ),
    }


def _heartbeat_ages(cluster: LocalCluster) -> tuple[float | None, float | None, str]:
    """Age of the newest heartbeat row on the primary (the writer) and on the replica (lag)."""
    ages: list[float | None] = []
    error = ""
    for role in ("primary", "replica"):
        try:
            with admin_connection(
                cluster.specs[role], password=cluster.root_password, connect_timeout=2
            ) as conn:
                ages.append(heartbeat_age(conn))
        except (LedgerGuardError, pymysql.MySQLError) as exc:
            ages.append(None)
            error = error or _error(exc)
    return ages[0], ages[1], error


def _replication(
    cluster: LocalCluster, status: ClusterStatus | None
) -> tuple[dict[str, Any], Component]:
    """Heartbeat lag, Seconds_Behind_Master, GTID gap and thread state of the replica.

    The lag is only trusted while the primary's own heartbeat is fresh: a stopped writer (event
    scheduler off) makes every replica look behind, which is a monitoring fault, not a
    replication one, and is reported as such.
    """
    facts: dict[str, Any] = {
        "io_running": None,
        "sql_running": None,
        "heartbeat_lag_seconds": None,
        "heartbeat_writer_age_seconds": None,
        "seconds_behind_master": None,
        "gtid_gap": None,
        "error": "",
    }
    repl = status.replica.replication if status else None
    address = f"{cluster.settings.replica_host}:{cluster.settings.replica_port}"
    if status is None or not status.replica.up or repl is None:
        facts["error"] = "replica not reachable"
        return facts, Component(False, address, facts["error"])
    writer_age, lag, probe_error = _heartbeat_ages(cluster)
    facts |= {
        "io_running": repl.io_running,
        "sql_running": repl.sql_running,
        "heartbeat_lag_seconds": lag,
        "heartbeat_writer_age_seconds": writer_age,
        "seconds_behind_master": repl.seconds_behind,
        "gtid_gap": gtid_gap(
            status.primary.gtid_binlog_pos or status.primary.gtid_executed,
            status.replica.gtid_executed,
        ),
        "error": repl.last_io_error or repl.last_sql_error or probe_error,
    }
    writer_stale = writer_age is None or writer_age > LAG_LIMIT_SECONDS
    if lag is None:
        lag_text = "heartbeat lag unknown (no heartbeat row)"
    elif writer_stale:
        lag_text = "heartbeat lag unknown (the primary's heartbeat writer is stopped)"
    else:
        lag_text = f"heartbeat lag {lag:.1f} s"
    parts = [
        f"from {repl.source or '-'}",
        f"IO {'yes' if repl.io_running else 'NO'}, SQL {'yes' if repl.sql_running else 'NO'}",
        lag_text,
        f"Seconds_Behind_Master {repl.seconds_behind if repl.seconds_behind is not None else '-'}",
    ]
    if facts["gtid_gap"] is not None:
        parts.append(f"GTID gap {facts['gtid_gap']}")
    if facts["error"]:
        parts.append(facts["error"])
    lag_ok = lag is None or writer_stale or lag <= LAG_LIMIT_SECONDS
    return facts, Component(repl.healthy and lag_ok, address, "; ".join(parts))


# --- HTTP services ------------------------------------------------------------------------------
def _api(settings: Settings) -> Component:
    url = f"http://{reachable_host(settings.api_host)}:{settings.api_port}"
    try:
        code, body = _get_json(f"{url}/ready")
    except httpx.HTTPError as exc:
        return Component(False, url, f"not answering ({_error(exc)})")
    if code == 200:
        gap = body.get("replica_gtid_gap") if isinstance(body, dict) else None
        return Component(True, url, "ready" + (f", replica GTID gap {gap}" if gap else ""))
    return Component(False, url, f"/ready answered {code}: {body}")


def _airflow(settings: Settings) -> Component:
    url = f"http://127.0.0.1:{settings.airflow_port}"
    try:
        code, body = _get_json(f"{url}/api/v2/monitor/health")
    except httpx.HTTPError as exc:
        return Component(False, url, f"not answering ({_error(exc)})")
    if code != 200 or not isinstance(body, dict):
        return Component(False, url, f"health answered {code}")
    states = {
        name: (part or {}).get("status")
        for name, part in body.items()
        if isinstance(part, dict) and "status" in part
    }
    healthy = all(state == "healthy" for state in states.values())
    return Component(healthy, url, ", ".join(f"{k} {v}" for k, v in states.items()))


def _prometheus_view(url: str) -> dict[str, Any]:
    """Targets and firing alerts as the running Prometheus sees them."""
    _, targets = _get_json(f"{url}/api/v1/query?query=up")
    _, alerts = _get_json(f"{url}/api/v1/alerts")
    return {
        "targets": [
            {
                "job": item["metric"].get("job"),
                "instance": item["metric"].get("instance"),
                "up": item["value"][1] == "1",
            }
            for item in targets["data"]["result"]
        ],
        "firing_alerts": sorted(
            {a["labels"]["alertname"] for a in alerts["data"]["alerts"] if a["state"] == "firing"}
        ),
    }


def _monitoring(settings: Settings) -> tuple[dict[str, Component], dict[str, Any]]:
    try:
        processes = LocalMonitoring(settings).status().processes
    except LedgerGuardError as exc:
        down = Component(False, "-", _error(exc))
        return {"prometheus": down}, {}
    components: dict[str, Component] = {}
    view: dict[str, Any] = {}
    for process in processes:
        detail = f"pid {process.pid}" if process.pid else "not running"
        if process.pid and not process.answering:
            detail += ", not answering"
        components[process.name] = Component(process.up, process.url, detail)
    prometheus = components.get("prometheus")
    if prometheus and prometheus.up:
        try:
            view = _prometheus_view(prometheus.address)
        except (httpx.HTTPError, KeyError, TypeError) as exc:
            prometheus.detail += f", API query failed: {_error(exc)}"
        else:
            up = sum(target["up"] for target in view["targets"])
            firing = view["firing_alerts"]
            prometheus.detail += f", targets {up}/{len(view['targets'])} up, " + (
                f"firing: {', '.join(firing)}" if firing else "no alert firing"
            )
    return components, view


def _scorers(settings: Settings) -> dict[str, Component]:
    """Each streaming scorer partition: running, streaming, and how far behind the replica."""
    from ledgerguard.realtime.process import running_pid, started_partitions
    from ledgerguard.realtime.status import read_status

    components: dict[str, Component] = {}
    for partition in started_partitions(settings):
        name = "scorer" if partition.count == 1 else f"scorer {partition.name}"
        address = f"127.0.0.1:{settings.scorer_metrics_port + partition.index}"
        pid = running_pid(settings, partition)
        if pid is None:
            components[name] = Component(False, address, "not running")
            continue
        status = read_status(settings, partition) or {}
        lag_n, lag_s = status.get("lag_transactions"), status.get("lag_seconds")
        lag = (
            f"lag {lag_n} transactions / {lag_s:.1f} s"
            if lag_n is not None and lag_s is not None
            else "lag unknown"
        )
        detail = f"pid {pid}, {status.get('state', 'starting')}, {lag}"
        if status.get("last_error"):
            detail += f", {status['last_error']}"
        components[name] = Component(bool(status.get("connected")), address, detail)
    return components


def _binlog_archive(settings: Settings) -> tuple[Component, dict[str, Any]]:
    """The binlog archiver: running, streaming the primary, and the archive's lag."""
    from ledgerguard.backup.archiver import archive_summary, archiver_status

    try:
        archive = archiver_status(settings).to_dict()
    except (LedgerGuardError, OSError) as exc:
        address = f"{reachable_host(settings.bind_address)}:{settings.backup_metrics_port}"
        return Component(False, address, _error(exc)), {}
    return Component(archive["up"], archive["metrics_url"], archive_summary(archive)), archive


# --- all together -------------------------------------------------------------------------------
def stack_status(settings: Settings) -> dict[str, Any]:
    """Every component of the local stack: `{"healthy", "components", "replication", ...}`.

    `components` maps a name (primary, replica, replication, api, airflow, the scorer,
    binlog-archive, the exporters, prometheus) to `{"up", "address", "detail"}`; `healthy` is
    true when all are up. `replication` holds the numbers (heartbeat lag, Seconds_Behind_Master,
    GTID gap); `binlog_archive` the archiver's state and lag; `prometheus` its targets and firing
    alerts; `cluster` the full `cluster status`.
    """
    cluster = LocalCluster(settings)
    status, components = _cluster(settings, cluster)
    replication, components["replication"] = _replication(cluster, status)
    components["api"] = _api(settings)
    components["airflow"] = _airflow(settings)
    components |= _scorers(settings)
    components["binlog-archive"], archive = _binlog_archive(settings)
    monitoring, prometheus_view = _monitoring(settings)
    components |= monitoring
    return {
        "healthy": all(component.up for component in components.values()),
        "components": {name: component.to_dict() for name, component in components.items()},
        "replication": replication,
        "binlog_archive": archive,
        "prometheus": prometheus_view,
        "cluster": status.to_dict() if status else None,
    }
