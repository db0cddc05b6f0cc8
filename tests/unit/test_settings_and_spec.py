"""Settings (names, secrets policy) and the generated server configuration."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from ledgerguard.cluster.spec import server_specs
from ledgerguard.settings import Settings
from tests.support import TEST_SECRETS

ORIGINAL_ENV = {
    "MYSQL_ROOT_PASSWORD": "rootpassword",
    "REPLICA_USER": "app_user",
    "REPLICA_PASSWORD": "AppPass123!",
    "REPL_USER": "repl_user",
    "REPL_PASSWORD": "ReplicaPass123!",
    "LEDGERGUARD_API_DB_PASSWORD": "ApiPass123!",
    "LEDGERGUARD_MIGRATE_PASSWORD": "MigratePass123!",
    "LEDGERGUARD_MONITOR_PASSWORD": "MonitorPass123!",
    "LEDGERGUARD_BACKUP_PASSWORD": "BackupPass123!",
}


def test_original_design_names_and_defaults(monkeypatch: pytest.MonkeyPatch):
    for key, value in ORIGINAL_ENV.items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)
    assert settings.mysql_root_password.get_secret_value() == "rootpassword"
    assert settings.replica_user == "app_user" and settings.repl_user == "repl_user"
    assert (settings.primary_port, settings.replica_port, settings.api_port) == (3306, 3307, 8000)
    assert settings.innodb_buffer_pool_size == "1G"
    assert settings.reports_dir == Path("reports")
    assert "rootpassword" not in repr(settings)  # secrets never print


def test_ledgerguard_names_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    for key, value in ORIGINAL_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("LEDGERGUARD_HOME", str(tmp_path))
    monkeypatch.setenv("LEDGERGUARD_PRIMARY_PORT", "4406")
    monkeypatch.setenv("LEDGERGUARD_REPLICA_PORT", "4407")
    monkeypatch.setenv("LEDGERGUARD_API_PORT", "9000")
    monkeypatch.setenv("LEDGERGUARD_REPORTS_DIR", str(tmp_path / "r"))
    settings = Settings(_env_file=None)
    assert settings.state_dir == tmp_path.resolve()
    assert (settings.primary_port, settings.replica_port, settings.api_port) == (4406, 4407, 9000)
    assert settings.reports_dir == tmp_path / "r"


def test_dev_secrets_refused_in_production(monkeypatch: pytest.MonkeyPatch):
    for key, value in ORIGINAL_ENV.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError, match="development value"):
        Settings(_env_file=None, environment="production")
    Settings(_env_file=None, environment="production", api_docs=False, **TEST_SECRETS)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"api_db_password": ""}, "api_db_password is empty"),
        ({"monitor_password": "short-pw"}, "monitor_password is too short"),
        ({"backup_password": "BackupPass123!"}, "backup_password uses a development"),
        ({"backup_method": "physical-ish"}, "backup_method"),
        ({"airflow_admin_password": "admin"}, "airflow_admin_password uses a development"),
        ({"grafana_admin_password": "changeme"}, "grafana_admin_password uses a development"),
        ({"api_rate_limit": 0}, "RATE_LIMIT=0"),
        ({"api_docs": True}, "API_DOCS=false"),
    ],
)
def test_production_check_covers_every_secret_and_the_risky_switches(
    override: dict[str, object], message: str
):
    values = {"environment": "production", "api_docs": False, **TEST_SECRETS} | override
    with pytest.raises(ValidationError, match=message):
        Settings(_env_file=None, **values)


def test_a_child_gets_only_the_secrets_it_is_given(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    from ledgerguard.settings import without_secrets
    from ledgerguard.settings.secrets import SecretWithheld

    parent = Settings(_env_file=None, **TEST_SECRETS)
    inherited = without_secrets({"MYSQL_ROOT_PASSWORD": "x", "PATH": "/bin"})
    assert inherited == {"PATH": "/bin"}
    env = inherited | parent.to_env(secrets=("api_db_password",))
    assert TEST_SECRETS["mysql_root_password"] not in env.values()
    # a .env in the child's directory must not bring the withheld secrets back either
    (tmp_path / ".env").write_text(f"MYSQL_ROOT_PASSWORD={TEST_SECRETS['mysql_root_password']}\n")
    monkeypatch.chdir(tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    child = Settings()
    assert child.api_db_password.get_secret_value() == TEST_SECRETS["api_db_password"]
    with pytest.raises(SecretWithheld, match="mysql_root_password is not given"):
        child.mysql_root_password.get_secret_value()
    assert TEST_SECRETS["mysql_root_password"] not in child.to_env().values()


def test_missing_secret_is_an_error(monkeypatch: pytest.MonkeyPatch):
    for key in ORIGINAL_ENV:
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(ValidationError, match="MYSQL_ROOT_PASSWORD"):
        Settings(_env_file=None)


def test_primary_is_durable_and_replica_relaxed(tmp_path: Path):
    settings = Settings(_env_file=None, home=tmp_path, **TEST_SECRETS)
    specs = server_specs(settings)
    primary = specs["primary"].render_config()
    replica = specs["replica"].render_config()
    for line in (
        "server_id = 1",
        "binlog_format = ROW",
        "gtid_strict_mode = ON",
        "innodb_flush_log_at_trx_commit = 1",
        "sync_binlog = 1",
        "innodb_buffer_pool_size = 1G",
    ):
        assert line in primary
    for line in (
        "server_id = 2",
        "read_only = ON",
        "log_slave_updates = ON",
        "slave_parallel_mode = optimistic",
        "slave_parallel_threads = 4",
        "innodb_flush_log_at_trx_commit = 2",
        "sync_binlog = 0",
    ):
        assert line in replica
    assert specs["primary"].datadir != specs["replica"].datadir
    assert specs["primary"].socket.parent == tmp_path.resolve() / "primary"


def test_env_example_documents_every_setting(tmp_path: Path):
    """Docs match code: each setting appears in .env.example with a value and a comment."""
    import re

    text = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    settings = Settings(_env_file=None, home=tmp_path, **TEST_SECRETS)
    missing = [k for k in settings.to_env() if not re.search(rf"^{re.escape(k)}=", text, re.M)]
    assert not missing
    example = Settings(_env_file=Path(__file__).resolve().parents[2] / ".env.example")
    assert example.primary_port == 3306 and example.fraud.customer_windows_days == (1, 7, 30)


def test_the_test_session_reads_no_env_file():
    """`make demo` writes `.env` (development secrets) into the checkout; `make test` must not
    read it (`LEDGERGUARD_ENV_FILE=""`, set by `tests/conftest.py`), or every `Settings()` of
    a test under `LEDGERGUARD_ENVIRONMENT=test` refuses those values. Outside tests the
    default is `.env`, and the variable names another file."""
    import os
    import subprocess
    import sys

    from ledgerguard.settings import ENV_FILE, Settings

    assert os.environ["LEDGERGUARD_ENV_FILE"] == "" and ENV_FILE is None
    assert Settings.model_config["env_file"] is None
    probe = "from ledgerguard.settings import Settings; print(Settings.model_config['env_file'])"
    for value, expected in ((None, ".env"), ("deploy.env", "deploy.env"), ("", "None")):
        env = {k: v for k, v in os.environ.items() if k != "LEDGERGUARD_ENV_FILE"}
        if value is not None:
            env["LEDGERGUARD_ENV_FILE"] = value
        out = subprocess.run(
            [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == expected
