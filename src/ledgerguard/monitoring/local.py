"""The local monitoring stack: one mysqld-exporter per server and Prometheus, from Debian.

`up` is idempotent: it re-renders the configuration from `deploy/prometheus/` and the settings,
has `promtool` check it before anything starts, starts what is not running and makes a running
Prometheus reload (SIGHUP) so a changed rule or target takes effect without losing data.
Exporters start before Prometheus so its first scrape finds them; `down` stops in reverse.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ledgerguard.monitoring.config import (
    DEPLOY_DIR,
    HEARTBEAT_FLAGS,
    MonitoringFiles,
    Role,
    check_prometheus_config,
    reachable_host,
    write_monitoring_config,
)
from ledgerguard.monitoring.process import LocalProcess, ProcessStatus, find_tool
from ledgerguard.settings import Settings

Progress = Callable[[str], None]

#: How long Prometheus keeps samples locally.
RETENTION = "15d"
#: Seconds a process may take to answer after it was started.
START_TIMEOUT = 30.0


def _quiet(_: str) -> None:
    """Default progress sink."""


@dataclass
class MonitoringUp:
    """What `LocalMonitoring.up` did."""

    started: list[str] = field(default_factory=list)
    reloaded: list[str] = field(default_factory=list)


@dataclass
class MonitoringStatus:
    """Every monitoring process; healthy when all are up."""

    processes: list[ProcessStatus]

    @property
    def healthy(self) -> bool:
        return all(process.up for process in self.processes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "processes": {process.name: process.to_dict() for process in self.processes},
        }


class LocalMonitoring:
    """Prometheus and two mysqld-exporters as local processes under `settings.state_dir`."""

    def __init__(self, settings: Settings, *, deploy_dir: Path = DEPLOY_DIR) -> None:
        self.settings = settings
        self.deploy_dir = deploy_dir
        self.files = MonitoringFiles.of(settings)

    @cached_property
    def _tools(self) -> dict[str, str]:
        return {
            name: find_tool(name)
            for name in ("prometheus", "promtool", "prometheus-mysqld-exporter")
        }

    def exporter(self, role: Role) -> LocalProcess:
        """The mysqld-exporter watching the `role` server."""
        port = (
            self.settings.primary_exporter_port
            if role == "primary"
            else self.settings.replica_exporter_port
        )
        host = reachable_host(self.settings.bind_address)
        name = f"mysqld-exporter-{role}"
        return LocalProcess(
            name=name,
            argv=(
                self._tools["prometheus-mysqld-exporter"],
                f"--config.my-cnf={self.files.exporter_cnf(role)}",
                f"--web.listen-address={self.settings.bind_address}:{port}",
                *HEARTBEAT_FLAGS,
                "--collect.binlog_size",
            ),
            host=host,
            port=port,
            ready_path="/",
            pid_file=self.files.pid_file(name),
            log_file=self.files.log_file(name),
            port_setting=f"LEDGERGUARD_{role.upper()}_EXPORTER_PORT",
        )

    def prometheus(self) -> LocalProcess:
        port = self.settings.prometheus_port
        return LocalProcess(
            name="prometheus",
            argv=(
                self._tools["prometheus"],
                f"--config.file={self.files.prometheus_config}",
                f"--storage.tsdb.path={self.files.prometheus_data}",
                f"--storage.tsdb.retention.time={RETENTION}",
                f"--web.listen-address={self.settings.bind_address}:{port}",
            ),
            host=reachable_host(self.settings.bind_address),
            port=port,
            ready_path="/-/ready",
            pid_file=self.files.pid_file("prometheus"),
            log_file=self.files.log_file("prometheus"),
            port_setting="LEDGERGUARD_PROMETHEUS_PORT",
        )

    def processes(self) -> list[LocalProcess]:
        """In start order."""
        return [self.exporter("primary"), self.exporter("replica"), self.prometheus()]

    # --- lifecycle ------------------------------------------------------------------------------
    def render(self) -> Path:
        """Write and check the configuration; returns the path of `prometheus.yml`."""
        write_monitoring_config(self.settings, self.files, deploy_dir=self.deploy_dir)
        check_prometheus_config(self._tools["promtool"], self.files.prometheus_config)
        return self.files.prometheus_config

    def up(self, *, progress: Progress = _quiet) -> MonitoringUp:
        """Render and check the config, start what is not running, reload what is."""
        self.render()
        result = MonitoringUp()
        for process in self.processes():
            if process.start(timeout=START_TIMEOUT):
                result.started.append(process.name)
                progress(f"started {process.name} on {process.url}")
            elif process.name == "prometheus" and process.reload():
                result.reloaded.append(process.name)
                progress(f"{process.name} reloads its configuration")
        return result

    def down(self, *, progress: Progress = _quiet) -> list[str]:
        """Stop Prometheus, then the exporters; returns the names of those that were running."""
        stopped = []
        for process in reversed(self.processes()):
            if process.stop():
                stopped.append(process.name)
                progress(f"stopped {process.name}")
        return stopped

    def status(self) -> MonitoringStatus:
        return MonitoringStatus([process.status() for process in self.processes()])
