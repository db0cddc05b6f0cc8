"""Rendering of the monitoring configuration under `<state dir>/monitoring`.

The sources live in the repository (`deploy/prometheus/prometheus.yml.tmpl` and
`deploy/prometheus/rules/*.yml`); what the processes read is rendered here on every `up`, so the
files under the state directory are always the templates plus the current settings, never hand
edits. Credentials for mysqld-exporter go to private (0600) files, not to the command line or the
environment, where other users could read them through `ps`.
"""

from __future__ import annotations

import json
import shutil
import string
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ledgerguard.files import write_private
from ledgerguard.monitoring.errors import ConfigError
from ledgerguard.settings import Settings

Role = Literal["primary", "replica"]

#: `deploy/` of the repository this package runs from (the package is installed editable).
DEPLOY_DIR = Path(__file__).resolve().parents[3] / "deploy"

#: Prometheus job names: part of the contract with the alert rules and the dashboards.
API_JOB = "ledgerguard-api"
SCORER_JOB = "ledgerguard-scorer"
#: The binlog archiver's /metrics (ledgerguard.backup.metrics).
BACKUP_JOB = "ledgerguard-backup"
EXPORTER_JOBS: dict[Role, str] = {"primary": "mysql-primary", "replica": "mysql-replica"}

#: Heartbeat flags for mysqld-exporter: pt-heartbeat's table, timestamps in UTC.
HEARTBEAT_FLAGS = (
    "--collect.heartbeat",
    "--collect.heartbeat.database=heartbeat",
    "--collect.heartbeat.table=heartbeat",
    "--collect.heartbeat.utc",
)

_WILDCARD_HOSTS = ("", "0.0.0.0", "::", "[::]")


@dataclass(frozen=True)
class MonitoringFiles:
    """Where every monitoring file of one state directory lives."""

    root: Path

    @classmethod
    def of(cls, settings: Settings) -> MonitoringFiles:
        return cls(settings.state_dir / "monitoring")

    @property
    def prometheus_config(self) -> Path:
        return self.root / "prometheus.yml"

    @property
    def rules_dir(self) -> Path:
        return self.root / "rules"

    @property
    def prometheus_data(self) -> Path:
        return self.root / "prometheus-data"

    def exporter_cnf(self, role: Role) -> Path:
        return self.root / f"mysqld-exporter-{role}.cnf"

    def pid_file(self, name: str) -> Path:
        return self.root / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.root / f"{name}.log"


@dataclass(frozen=True)
class ScrapeTargets:
    """host:port of everything Prometheus scrapes, and the `instance` label of each exporter.

    An exporter's own address says nothing to a reader; its `instance` is the address of the
    database server it watches, so alerts name the server that is down.
    """

    api: str
    scorer: str
    backup: str
    exporters: dict[Role, str]
    databases: dict[Role, str]
    prometheus: str


def reachable_host(host: str) -> str:
    """The address to connect to for a service listening on `host` (wildcards → loopback)."""
    return "127.0.0.1" if host in _WILDCARD_HOSTS else host


def scrape_targets(settings: Settings) -> ScrapeTargets:
    """The local stack's targets, from the settings."""
    exporter_host = reachable_host(settings.bind_address)
    return ScrapeTargets(
        api=f"{reachable_host(settings.api_host)}:{settings.api_port}",
        scorer=f"127.0.0.1:{settings.scorer_metrics_port}",
        backup=f"{reachable_host(settings.bind_address)}:{settings.backup_metrics_port}",
        exporters={
            "primary": f"{exporter_host}:{settings.primary_exporter_port}",
            "replica": f"{exporter_host}:{settings.replica_exporter_port}",
        },
        databases={
            "primary": f"{settings.primary_host}:{settings.primary_port}",
            "replica": f"{settings.replica_host}:{settings.replica_port}",
        },
        prometheus=f"{reachable_host(settings.bind_address)}:{settings.prometheus_port}",
    )


def render_prometheus_config(
    template: str, *, targets: ScrapeTargets, scrape_interval_seconds: int, rules_dir: Path
) -> str:
    """`prometheus.yml` from its template (`$name` placeholders, values YAML-quoted)."""
    interval = f"{scrape_interval_seconds}s"
    # Prometheus refuses a scrape timeout longer than the interval; 10 s is its own default.
    timeout = f"{min(scrape_interval_seconds, 10)}s"
    values = {
        "scrape_interval": interval,
        "scrape_timeout": timeout,
        "evaluation_interval": interval,
        "rules_glob": str(rules_dir / "*.yml"),
        "api_job": API_JOB,
        "api_target": targets.api,
        "scorer_job": SCORER_JOB,
        "scorer_target": targets.scorer,
        "backup_job": BACKUP_JOB,
        "backup_target": targets.backup,
        "prometheus_target": targets.prometheus,
        "primary_job": EXPORTER_JOBS["primary"],
        "primary_exporter_target": targets.exporters["primary"],
        "primary_instance": targets.databases["primary"],
        "replica_job": EXPORTER_JOBS["replica"],
        "replica_exporter_target": targets.exporters["replica"],
        "replica_instance": targets.databases["replica"],
    }
    try:
        return string.Template(template).substitute(
            {key: json.dumps(value) for key, value in values.items()}
        )
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"the Prometheus template has an unknown placeholder: {exc}") from exc


def _ini_value(value: str) -> str:
    """`value` quoted for the go-ini parser of mysqld-exporter (`#`, `;`, `"` stay literal)."""
    if "\n" in value or "\r" in value:
        raise ConfigError("the monitoring password must not contain a line break")
    if "`" not in value:
        return f"`{value}`"
    if '"""' not in value:
        return f'"""{value}"""'
    raise ConfigError(
        'the monitoring password contains both ` and """, which mysqld-exporter\'s '
        "config parser cannot quote; choose another LEDGERGUARD_MONITOR_PASSWORD"
    )


def render_exporter_cnf(*, user: str, password: str, host: str, port: int) -> str:
    """The `--config.my-cnf` file of one mysqld-exporter (read by the exporter only)."""
    return (
        "# generated by ledgerguard for mysqld-exporter; edits are overwritten\n"
        "# (quoted for the exporter's go-ini parser, not for MariaDB clients)\n"
        "[client]\n"
        f"user = {_ini_value(user)}\n"
        f"password = {_ini_value(password)}\n"
        f"host = {host}\n"
        f"port = {int(port)}\n"
    )


def write_monitoring_config(
    settings: Settings, files: MonitoringFiles, *, deploy_dir: Path = DEPLOY_DIR
) -> None:
    """Render `prometheus.yml`, copy the rule files and write both exporters' credentials."""
    template_path = deploy_dir / "prometheus" / "prometheus.yml.tmpl"
    source_rules = deploy_dir / "prometheus" / "rules"
    try:
        template = template_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read {template_path}: monitoring runs from a source checkout "
            "(pip install -e .), which holds deploy/"
        ) from exc
    files.root.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(files.rules_dir, ignore_errors=True)
    files.rules_dir.mkdir()
    for rule_file in sorted(source_rules.glob("*.yml")):
        shutil.copyfile(rule_file, files.rules_dir / rule_file.name)
    files.prometheus_config.write_text(
        render_prometheus_config(
            template,
            targets=scrape_targets(settings),
            scrape_interval_seconds=settings.scrape_interval_seconds,
            rules_dir=files.rules_dir,
        ),
        encoding="utf-8",
    )
    hosts: dict[Role, tuple[str, int]] = {
        "primary": (settings.primary_host, settings.primary_port),
        "replica": (settings.replica_host, settings.replica_port),
    }
    for role, (host, port) in hosts.items():
        write_private(
            files.exporter_cnf(role),
            render_exporter_cnf(
                user=settings.monitor_user,
                password=settings.monitor_password.get_secret_value(),
                host=host,
                port=port,
            ),
        )


def check_prometheus_config(promtool: str, config: Path) -> None:
    """Run `promtool check config` (which checks the rule files too); `ConfigError` if refused."""
    result = subprocess.run(
        [promtool, "check", "config", str(config)], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise ConfigError(
            f"promtool refused {config}:\n{(result.stdout + result.stderr).strip()[-3000:]}"
        )
