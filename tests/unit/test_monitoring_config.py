"""Rendering of the monitoring configuration, credentials files, heartbeat SQL, dashboards."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import yaml

import ledgerguard
from ledgerguard.cluster import heartbeat
from ledgerguard.files import write_private
from ledgerguard.monitoring.config import (
    BACKUP_JOB,
    DEPLOY_DIR,
    MonitoringFiles,
    check_prometheus_config,
    render_exporter_cnf,
    render_prometheus_config,
    scrape_targets,
    write_monitoring_config,
)
from ledgerguard.monitoring.errors import ConfigError
from ledgerguard.monitoring.expressions import (
    DASHBOARDS_DIR,
    dashboard_queries,
    grafana_to_promql,
)
from ledgerguard.monitoring.process import find_tool
from tests.support import make_settings

TEMPLATE = (DEPLOY_DIR / "prometheus" / "prometheus.yml.tmpl").read_text()
GRAFANA = DEPLOY_DIR / "grafana"


def _rendered(tmp_path: Path, **overrides: object) -> dict:
    settings = make_settings(tmp_path, **overrides)
    text = render_prometheus_config(
        TEMPLATE,
        targets=scrape_targets(settings),
        scrape_interval_seconds=settings.scrape_interval_seconds,
        rules_dir=tmp_path / "rules",
    )
    return yaml.safe_load(text)


def test_prometheus_config_scrapes_api_and_both_exporters(tmp_path: Path):
    config = _rendered(
        tmp_path,
        primary_port=13306,
        replica_port=13307,
        api_port=18000,
        primary_exporter_port=9104,
        replica_exporter_port=9105,
    )
    assert config["global"]["scrape_interval"] == "15s"
    assert config["global"]["evaluation_interval"] == "15s"
    assert config["rule_files"] == [str(tmp_path / "rules" / "*.yml")]
    jobs = {job["job_name"]: job["static_configs"][0] for job in config["scrape_configs"]}
    assert jobs["ledgerguard-api"]["targets"] == ["127.0.0.1:18000"]
    assert jobs["mysql-primary"] == {
        "targets": ["127.0.0.1:9104"],
        "labels": {"role": "primary", "instance": "127.0.0.1:13306"},
    }
    assert jobs["mysql-replica"] == {
        "targets": ["127.0.0.1:9105"],
        "labels": {"role": "replica", "instance": "127.0.0.1:13307"},
    }
    assert "prometheus" in jobs


def test_short_scrape_interval_keeps_the_timeout_within_it(tmp_path: Path):
    config = _rendered(tmp_path, scrape_interval_seconds=1)
    assert config["global"]["scrape_interval"] == "1s"
    assert config["global"]["scrape_timeout"] == "1s"


def test_wildcard_listen_addresses_are_scraped_on_loopback(tmp_path: Path):
    config = _rendered(tmp_path, api_host="0.0.0.0", bind_address="0.0.0.0")
    jobs = {job["job_name"]: job["static_configs"][0] for job in config["scrape_configs"]}
    assert jobs["ledgerguard-api"]["targets"][0].startswith("127.0.0.1:")
    assert jobs["mysql-primary"]["targets"][0].startswith("127.0.0.1:")


def test_unknown_template_placeholder_is_a_config_error(tmp_path: Path):
    settings = make_settings(tmp_path)
    with pytest.raises(ConfigError, match="placeholder"):
        render_prometheus_config(
            "x: $nope",
            targets=scrape_targets(settings),
            scrape_interval_seconds=15,
            rules_dir=tmp_path,
        )


@pytest.mark.parametrize(
    ("password", "quoted"),
    [
        ("plain", "`plain`"),
        ('a#b;c"d=e\\f g', '`a#b;c"d=e\\f g`'),
        ("back`tick", '"""back`tick"""'),
    ],
)
def test_exporter_cnf_quotes_the_password_for_go_ini(password: str, quoted: str):
    text = render_exporter_cnf(user="monitor_user", password=password, host="127.0.0.1", port=1)
    assert f"password = {quoted}\n" in text
    assert "[client]\n" in text and "port = 1\n" in text


def test_exporter_cnf_refuses_unquotable_passwords():
    with pytest.raises(ConfigError, match="line break"):
        render_exporter_cnf(user="u", password="a\nb", host="h", port=1)
    with pytest.raises(ConfigError, match="LEDGERGUARD_MONITOR_PASSWORD"):
        render_exporter_cnf(user="u", password='`"""', host="h", port=1)


def test_write_private_makes_an_existing_file_owner_only(tmp_path: Path):
    path = tmp_path / "secret.cnf"
    path.write_text("old")
    path.chmod(0o644)
    write_private(path, "new")
    assert path.read_text() == "new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret.cnf"]


def test_written_config_passes_promtool_and_hides_credentials(tmp_path: Path):
    settings = make_settings(tmp_path, scrape_interval_seconds=1)
    files = MonitoringFiles.of(settings)
    write_monitoring_config(settings, files)
    check_prometheus_config(find_tool("promtool"), files.prometheus_config)
    assert sorted(p.name for p in files.rules_dir.iterdir()) == [
        "api.yml",
        "backup.yml",
        "mysql.yml",
        "scorer.yml",
    ]
    for role in ("primary", "replica"):
        cnf = files.exporter_cnf(role)
        assert stat.S_IMODE(cnf.stat().st_mode) == 0o600
        assert settings.monitor_password.get_secret_value() in cnf.read_text()
    assert settings.monitor_password.get_secret_value() not in files.prometheus_config.read_text()


def test_promtool_refusal_is_a_config_error(tmp_path: Path):
    bad = tmp_path / "prometheus.yml"
    bad.write_text("global:\n  scrape_interval: 1s\n  scrape_timeout: 10s\n")
    with pytest.raises(ConfigError, match="promtool refused"):
        check_prometheus_config(find_tool("promtool"), bad)


def test_heartbeat_writer_stores_pt_heartbeat_utc_timestamps():
    # `run` interpolates parameters, so the SQL spells %% and the server receives one %.
    sql = heartbeat.CREATE_EVENT.sql % ()
    assert "EVERY 1 SECOND" in sql
    assert "DATE_FORMAT(UTC_TIMESTAMP(6), '%Y-%m-%dT%H:%i:%s.%f')" in sql
    assert (heartbeat.ALTER_EVENT.sql % ()).endswith(sql.split(" DO ", 1)[1])
    table = heartbeat.CREATE_TABLE.sql
    for column in ("ts VARCHAR(26)", "server_id INT UNSIGNED NOT NULL PRIMARY KEY"):
        assert column in table


def test_grafana_variables_become_plain_promql():
    assert grafana_to_promql('rate(x{role=~"$role"}[$__rate_interval])') == (
        'rate(x{role=~".+"}[1m])'
    )
    assert grafana_to_promql("rate(x[${__rate_interval}])") == "rate(x[1m])"
    with pytest.raises(KeyError):
        grafana_to_promql("x{a=$unknown}")


def test_dashboards_are_provisioned_from_files_against_the_provisioned_datasource():
    datasources = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    assert source["url"] == "http://prometheus:9090" and source["type"] == "prometheus"
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/dashboards.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"

    boards = {path.name: json.loads(path.read_text()) for path in DASHBOARDS_DIR.glob("*.json")}
    titles = {board["title"] for board in boards.values()}
    assert {"LedgerGuard overview", "MySQL overview"} <= titles
    assert len({board["uid"] for board in boards.values()}) == len(boards)
    for board in boards.values():
        for panel in board["panels"]:
            if panel["type"] != "row":
                assert panel["datasource"]["uid"] == source["uid"], panel["title"]
    overview = next(b for b in boards.values() if b["title"] == "LedgerGuard overview")
    panel_titles = {panel["title"] for panel in overview["panels"]}
    assert {"MySQL Questions", "API latency p50 / p95 / p99", "API error rate"} <= panel_titles


def test_grafana_is_provisioned_from_the_dashboards_the_package_ships():
    """One home for the panel queries: Compose mounts the package data the operations page
    reads, and the dashboards are inside the package (so inside a wheel)."""
    compose = yaml.safe_load((DEPLOY_DIR / "docker-compose.yml").read_text())
    mounts = {
        target: source
        for source, target, *_mode in (
            volume.split(":") for volume in compose["services"]["grafana"]["volumes"]
        )
    }
    assert (DEPLOY_DIR / mounts["/var/lib/grafana/dashboards"]).resolve() == DASHBOARDS_DIR
    assert DASHBOARDS_DIR.is_relative_to(Path(ledgerguard.__file__).parent)
    assert not (DEPLOY_DIR / "grafana" / "dashboards").exists()  # no second copy to drift


def test_every_dashboard_query_has_grafana_variables_we_can_replace():
    queries = dashboard_queries()
    assert len(queries) > 30
    for query in queries:
        assert "$" not in query.promql, (query.dashboard, query.panel)


def test_compose_prometheus_uses_the_same_jobs_and_roles(tmp_path: Path):
    """The rules and dashboards serve both stacks, so both configs must label alike."""
    compose_file = DEPLOY_DIR / "prometheus" / "prometheus.compose.yml"
    check_prometheus_config(find_tool("promtool"), compose_file)

    def roles(config: dict) -> dict[str, str | None]:
        return {
            job["job_name"]: job["static_configs"][0].get("labels", {}).get("role")
            for job in config["scrape_configs"]
        }

    local = roles(_rendered(tmp_path))
    # the binlog archiver (job ledgerguard-backup) runs in both: Compose's `archiver` service
    assert roles(yaml.safe_load(compose_file.read_text())) == local
    assert local[BACKUP_JOB] == "backup"
