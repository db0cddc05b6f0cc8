"""What can be checked of the Compose stack without a Docker engine."""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "deploy" / "docker-compose.yml"


def _compose_command() -> list[str]:
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy is None:
        pytest.fail("neither `docker compose` nor `docker-compose` is installed: run make setup")
    return [legacy]


@pytest.fixture(scope="module")
def resolved() -> dict:
    """`docker compose config` output: validated and with paths resolved."""
    result = subprocess.run(
        [
            *_compose_command(),
            "-p",
            "ledgerguard",
            "-f",
            str(COMPOSE_FILE),
            "--env-file",
            str(REPO / ".env.example"),
            "config",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        # only `.env.example` may fill the variables: Compose prefers the process environment,
        # which earlier tests of the session may have given Airflow's or a withheld secret
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")},
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def _published(port: dict | str) -> tuple[str | None, str]:
    """(host address, host port) of a port, in the long form or the short `ip:host:container`
    string the legacy `docker-compose config` prints when an address is given."""
    if isinstance(port, dict):
        return port.get("host_ip"), str(port["published"])
    parts = port.split("/")[0].split(":")
    return (parts[0] if len(parts) == 3 else None), parts[-2]


def test_every_mounted_file_and_build_context_exists(resolved: dict):
    for name, service in resolved["services"].items():
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
            if source.startswith("/"):
                assert Path(source).exists(), f"{name} mounts missing {source}"
        build = service.get("build")
        if build:
            context = Path(build["context"])
            assert context.is_dir(), name
            assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name


def test_start_order_uses_health_and_provisioning(resolved: dict):
    services = resolved["services"]
    provision = services["provision"]
    assert provision["command"][-2:] == ["--flavour", "mysql"]
    for db in ("mysql-primary", "mysql-replica"):
        assert provision["depends_on"][db]["condition"] == "service_healthy"
        assert "healthcheck" in services[db]
    for dependent in ("api", "airflow", "mysqld-exporter-primary", "mysqld-exporter-replica"):
        condition = services[dependent]["depends_on"]["provision"]["condition"]
        assert condition == "service_completed_successfully", dependent


def test_mysql_configs_enable_gtid_and_protect_the_replica():
    primary = (REPO / "deploy/mysql/primary.cnf").read_text()
    replica = (REPO / "deploy/mysql/replica.cnf").read_text()
    for text in (primary, replica):
        assert re.search(r"^gtid_mode = ON$", text, re.M)
        assert re.search(r"^enforce_gtid_consistency = ON$", text, re.M)
    assert re.search(r"^innodb_flush_log_at_trx_commit = 1$", primary, re.M)
    assert re.search(r"^sync_binlog = 1$", primary, re.M)
    assert re.search(r"^super_read_only = ON$", replica, re.M)
    assert "server_id = 1" in primary and "server_id = 2" in replica


def test_readme_section_matches_services_and_ports(resolved: dict):
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Docker Compose", 1)[1].split("\n## ", 1)[0]
    documented = {}
    for match in re.finditer(r"^\| `([a-z0-9-]+)`\s*\|\s*([0-9-]+)\s*\|", section, re.M):
        documented[match.group(1)] = match.group(2)
    published = {}
    for name, service in resolved["services"].items():
        ports = service.get("ports", [])
        published[name] = _published(ports[0])[1] if ports else "-"
    assert documented == published


def test_no_secret_values_in_the_compose_file():
    text = COMPOSE_FILE.read_text()
    for value in ("rootpassword", "AppPass123!", "ReplicaPass123!", "ApiPass123!"):
        assert value not in text


def test_safe_by_default(resolved: dict):
    """Published on loopback only, production settings, every password required."""
    for name, service in resolved["services"].items():
        for port in service.get("ports", []):
            assert _published(port)[0] == "127.0.0.1", (name, port)
        env = service.get("environment") or {}
        if "LEDGERGUARD_ENVIRONMENT" in env:
            assert env["LEDGERGUARD_ENVIRONMENT"] == "production", name
            assert env["LEDGERGUARD_API_DOCS"] == "false", name
    text = COMPOSE_FILE.read_text()
    for variable in ("AIRFLOW_ADMIN_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "MYSQL_ROOT_PASSWORD"):
        assert re.search(rf"\$\{{{variable}:\?", text), variable
        assert not re.search(rf"\$\{{{variable}:-", text), variable
    assert '-p"$$MYSQL_ROOT_PASSWORD' not in text  # no password on a command line
    proxy = (REPO / "deploy/reverse-proxy/Caddyfile").read_text()
    assert "reverse_proxy 127.0.0.1:8000" in proxy and "/metrics" in proxy


def test_mysql_root_only_from_localhost_and_the_provisioning_container(resolved: dict):
    """No root@'%': `MYSQL_ROOT_HOST` names the one-shot provisioning container's fixed address,
    which no other container can be given (dynamic addresses come from `ip_range`)."""
    provision = resolved["services"]["provision"]["networks"]["default"]["ipv4_address"]
    for name in ("mysql-primary", "mysql-replica"):
        root_host = resolved["services"][name]["environment"].get("MYSQL_ROOT_HOST")
        assert root_host == provision, (name, root_host)
    assert ipaddress.ip_address(provision).is_private
    (pool,) = resolved["networks"]["default"]["ipam"]["config"]
    assert ipaddress.ip_address(provision) in ipaddress.ip_network(pool["subnet"])
    assert ipaddress.ip_address(provision) not in ipaddress.ip_network(pool["ip_range"])
    for name, service in resolved["services"].items():
        check = " ".join(map(str, (service.get("healthcheck") or {}).get("test", [])))
        assert "PASSWORD" not in check.upper() and " -p" not in check, name  # no secret in argv


def test_each_service_gets_only_its_accounts_secrets(resolved: dict):
    """Least secrets in Compose as locally: the API, the scorer and Airflow get the passwords
    their processes are given by `ledgerguard up` (the same constants), and name every other
    secret as withheld so that `Settings()` starts without it."""
    from ledgerguard.api.server import API_SECRETS
    from ledgerguard.backup.archiver import ARCHIVER_SECRETS
    from ledgerguard.orchestration.config import TASK_SECRETS
    from ledgerguard.realtime.process import SCORER_SECRETS
    from ledgerguard.settings import _env_name
    from ledgerguard.settings.secrets import SECRET_FIELDS, WITHHELD

    for name, allowed in (
        ("api", API_SECRETS),
        ("scorer", SCORER_SECRETS),
        ("airflow", TASK_SECRETS),
        ("archiver", ARCHIVER_SECRETS),
    ):
        env = resolved["services"][name]["environment"]
        present = {
            field for field in SECRET_FIELDS if env.get(_env_name(field), WITHHELD) != WITHHELD
        }
        # Airflow's own login is the Airflow container's, not a database account's
        assert present - {"airflow_admin_password"} == set(allowed), name
        withheld = set(env["LEDGERGUARD_WITHHELD_SECRETS"].split(","))
        assert withheld == set(SECRET_FIELDS) - present - {"grafana_admin_password"}, name
    provision = resolved["services"]["provision"]["environment"]
    assert "MYSQL_ROOT_PASSWORD" in provision  # it creates the accounts


def test_backups_archive_and_verify_in_compose(resolved: dict):
    """#17 in Compose: the archiver streams into the `backups` volume and is scraped; Airflow
    (00_nightly_backup) verifies into the empty `backup-scratch` server, whose root is limited
    to the stack's containers; both write the volume as the same user."""
    services = resolved["services"]
    archiver, airflow = services["archiver"], services["airflow"]
    assert archiver["command"] == ["python", "-m", "ledgerguard.backup.archiver"]
    assert archiver["user"] == airflow["user"]
    for service in (archiver, airflow, services["backups-init"]):
        targets = [
            v["target"] if isinstance(v, dict) else v.split(":")[1] for v in service["volumes"]
        ]
        assert "/backups" in targets
    assert archiver["environment"]["LEDGERGUARD_BIND_ADDRESS"] == "0.0.0.0"
    port = archiver["environment"]["LEDGERGUARD_BACKUP_METRICS_PORT"]
    prometheus = yaml.safe_load((REPO / "deploy/prometheus/prometheus.compose.yml").read_text())
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    assert jobs["ledgerguard-backup"]["static_configs"][0]["targets"] == [f"archiver:{port}"]
    scratch = services["backup-scratch"]
    assert scratch["image"].startswith("mysql:8.4") and not scratch.get("ports")
    assert "--event-scheduler=OFF" in scratch["command"]
    (pool,) = resolved["networks"]["default"]["ipam"]["config"]
    root_host = scratch["environment"]["MYSQL_ROOT_HOST"]
    address, mask = root_host.split("/")
    assert ipaddress.ip_network(f"{address}/{mask}") == ipaddress.ip_network(pool["ip_range"])
    env = airflow["environment"]
    assert (env["LEDGERGUARD_BACKUP_SCRATCH_HOST"], env["LEDGERGUARD_BACKUP_SCRATCH_PORT"]) == (
        "backup-scratch",
        "3306",
    )
    assert (
        env["LEDGERGUARD_BACKUP_SCRATCH_PASSWORD"] == scratch["environment"]["MYSQL_ROOT_PASSWORD"]
    )
    build = services["backups-init"]["build"]
    assert build["target"] == "backup-tools"
    dockerfile = (Path(build["context"]) / build["dockerfile"]).read_text()
    assert "AS backup-tools" in dockerfile and "deploy/mysql/install-client.sh" in dockerfile
    assert "mysql-community-client" in (REPO / "deploy/mysql/install-client.sh").read_text()


def test_compose_env_writes_passwords_production_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """`make compose-env`: .env.example with every password fresh and random, which the
    production settings of the stack accept (the copied .env.example they refuse), and never
    over an existing .env."""
    from ledgerguard.settings import Settings
    from ledgerguard.settings.secrets import DEV_PASSWORDS

    # the file alone: the test session's own settings variables would override it
    prefixes = ("LEDGERGUARD_", "MYSQL_", "REPLICA_", "REPL_", "AIRFLOW_", "GRAFANA_")
    for name in [name for name in os.environ if name.startswith(prefixes)]:
        monkeypatch.delenv(name)

    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "compose-env.sh", tmp_path / "scripts")
    shutil.copy(REPO / ".env.example", tmp_path / ".env.example")
    script = [str(tmp_path / "scripts" / "compose-env.sh")]
    subprocess.run(script, check=True, capture_output=True)
    env = (tmp_path / ".env").read_text()
    assert (tmp_path / ".env").stat().st_mode & 0o077 == 0
    values = dict(
        line.split("=", 1) for line in env.splitlines() if line and not line.startswith("#")
    )
    passwords = {k: v for k, v in values.items() if k.endswith(("PASSWORD", "_PASS"))}
    assert {"MYSQL_ROOT_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "AIRFLOW_DB_PASS"} <= set(passwords)
    assert not set(passwords.values()) & DEV_PASSWORDS
    assert len(set(passwords.values())) == len(passwords)  # each its own
    assert all(len(value) >= 12 for value in passwords.values())
    # the rest of the file is .env.example's, line for line
    example = (REPO / ".env.example").read_text().splitlines()
    assert len(env.splitlines()) == len(example)
    # as the stack sets them (x-ledgerguard-env): production, no interactive docs
    stack = {"environment": "production", "api_docs": False}
    Settings(**stack, _env_file=tmp_path / ".env")  # type: ignore[arg-type, call-arg]
    with pytest.raises(ValueError, match="development"):
        Settings(**stack, _env_file=tmp_path / ".env.example")  # type: ignore[arg-type, call-arg]
    again = subprocess.run(script, capture_output=True, text=True)
    assert again.returncode == 1 and ".env exists" in again.stderr
    assert (tmp_path / ".env").read_text() == env
