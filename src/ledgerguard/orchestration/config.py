"""The local Airflow's home, environment and login, derived from `Settings` alone.

Everything Airflow needs is passed as environment variables (`AIRFLOW__SECTION__KEY`), so the
`airflow.cfg` Airflow writes on first start only holds its generated keys and defaults; changing
a LedgerGuard setting and restarting is enough, nothing to migrate in a config file.

* `AIRFLOW_HOME` = `<state dir>/airflow`: SQLite metadata DB, logs, the passwords file, our pid
  file and log. Deleting the folder resets Airflow (the analysis data is in the cluster).
* DAGs folder = the repository's `dags/`.
* Login: `[core] simple_auth_manager_users` = `<AIRFLOW_ADMIN_USER>:admin` and a passwords file
  we write (mode 0600) with `AIRFLOW_ADMIN_PASSWORD`, so the login is the configured one instead
  of a password Airflow generates and prints.
* Tasks see the project's settings: `Settings.to_env()` (with absolute paths, since task
  processes do not share our working directory) is part of the environment, and the replica is
  also exposed as the Airflow connection `ledgerguard_replica` (`AIRFLOW_CONN_LEDGERGUARD_REPLICA`,
  `app_user`) for operators that want a connection id. Secrets stay in the environment.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from ledgerguard.db.topology import acting_address
from ledgerguard.files import write_private
from ledgerguard.settings import Settings

#: The repository's `dags/` (src/ledgerguard/orchestration/config.py -> repo root).
REPO_DAGS_FOLDER = Path(__file__).resolve().parents[3] / "dags"

#: Role given to the admin login by the simple auth manager.
ADMIN_ROLE = "admin"


@dataclass(frozen=True)
class AirflowPaths:
    """Files of one local Airflow under its home."""

    home: Path

    @property
    def database(self) -> Path:
        return self.home / "airflow.db"

    @property
    def passwords_file(self) -> Path:
        return self.home / "simple_auth_manager_passwords.json"

    @property
    def pid_file(self) -> Path:
        return self.home / "standalone.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "standalone.log"


def airflow_paths(settings: Settings) -> AirflowPaths:
    return AirflowPaths(home=settings.state_dir / "airflow")


def client_host(settings: Settings) -> str:
    """Where clients reach a server bound to `settings.bind_address`."""
    return "127.0.0.1" if settings.bind_address in ("0.0.0.0", "::", "") else settings.bind_address


#: The only secrets Airflow and its tasks get: the read account (analysis, reports) and the API
#: account they write verdicts with; the freshness check reads thread state as the monitoring
#: account; `00_nightly_backup` backs up and verifies as the backup account (no write, no
#: replication control, no `mysql.*`). Never root's or the replication account's secret.
#: Airflow's own admin password reaches it in a 0600 file, not the environment.
TASK_SECRETS = (
    "replica_password",
    "api_db_password",
    "monitor_password",
    "backup_password",
    "backup_scratch_password",  # `backup verify` on an external scratch server (Compose)
)


def base_url(settings: Settings) -> str:
    """The api-server's root URL (UI, `/api/v2`, `/auth`, `/execution`)."""
    return f"http://{client_host(settings)}:{settings.airflow_port}"


def replica_connection_uri(settings: Settings) -> str:
    """`app_user` on the replica as an Airflow connection URI (`mysql://...`)."""
    user = quote(settings.replica_user, safe="")
    password = quote(settings.replica_password.get_secret_value(), safe="")
    host, port = acting_address(settings, "replica")
    return f"mysql://{user}:{password}@{host}:{port}/{settings.database}"


def venv_bin() -> Path:
    """The folder of this interpreter's scripts, where `pip install apache-airflow` put `airflow`."""
    return Path(sys.executable).parent


def airflow_env(
    settings: Settings, *, home: Path | None = None, dags_folder: Path | None = None
) -> dict[str, str]:
    """The variables (to add to `os.environ`) for every Airflow process and task.

    `home` defaults to `<state dir>/airflow`; tests point it elsewhere to keep a `dag.test()`
    metadata DB apart from a running standalone.
    """
    paths = AirflowPaths(home=home) if home else airflow_paths(settings)
    env = settings.to_env(secrets=TASK_SECRETS)
    # task processes run in other directories: relative paths would land elsewhere
    env["LEDGERGUARD_HOME"] = str(settings.state_dir)
    env["LEDGERGUARD_REPORTS_DIR"] = str(settings.reports_dir.expanduser().resolve())
    url = base_url(settings)
    env |= {
        "AIRFLOW_HOME": str(paths.home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder or REPO_DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{paths.database}",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        # a 2-core laptop also runs both database servers: a few task processes at a time
        "AIRFLOW__CORE__PARALLELISM": str(max(2, min(8, os.cpu_count() or 2))),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{settings.airflow_admin_user}:{ADMIN_ROLE}",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(paths.passwords_file),
        "AIRFLOW__API__HOST": settings.bind_address,
        "AIRFLOW__API__PORT": str(settings.airflow_port),
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(settings.airflow_worker_log_port),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(settings.airflow_trigger_log_port),
        # tasks report to the api-server; its default assumes port 8080
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
        "AIRFLOW_CONN_LEDGERGUARD_REPLICA": replica_connection_uri(settings),
        # `airflow standalone` starts its components by the bare name `airflow`
        "PATH": f"{venv_bin()}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    return env


def write_passwords_file(settings: Settings, path: Path) -> Path:
    """The simple auth manager's passwords file with the configured admin login, mode 0600.

    Written atomically (temporary file, then rename) and created with 0600 from the start, so
    the password is never readable by others, not even for a moment.
    """
    content = json.dumps(
        {settings.airflow_admin_user: settings.airflow_admin_password.get_secret_value()}
    )
    write_private(path, content + "\n")
    return path
