"""The one configuration object of LedgerGuard.

Every setting is read from the environment or from `.env` (in the working directory). Names are
`LEDGERGUARD_*`, except the secrets of the original design, which keep their original names
(`MYSQL_ROOT_PASSWORD`, `REPLICA_USER`, `REPLICA_PASSWORD`, `REPL_USER`, `REPL_PASSWORD`,
`AIRFLOW_*`) so an existing `.env` keeps working; `LEDGERGUARD_`-prefixed spellings of those are
accepted too.

Secrets have no default: a missing one is an error that names the variable. Outside development
(`LEDGERGUARD_ENVIRONMENT` other than `development`) the dev values shipped in `.env.example` are
refused, so a demo configuration cannot reach production by accident.

Nothing here is a module-level singleton: callers build `Settings()` once at their edge (CLI
callback, app factory, DAG task) and pass it down.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledgerguard.settings.fraud import FraudParameters

#: Passwords shipped in `.env.example` (and the original design's README). Fine on a laptop, refused
#: when `LEDGERGUARD_ENVIRONMENT` is not `development`.
DEV_PASSWORDS = frozenset(
    {
        "rootpassword",
        "AppPass123!",
        "ReplicaPass123!",
        "ApiPass123!",
        "MigratePass123!",
        "MonitorPass123!",
        "admin",
        "airflow",
        "changeme",
    }
)


def _secret(*names: str) -> Any:
    """A required secret readable under each of `names` (original name first)."""
    return Field(validation_alias=AliasChoices(*names))


class Settings(BaseSettings):
    """Configuration of the whole platform; see `.env.example` for every name with a comment."""

    model_config = SettingsConfigDict(
        env_prefix="LEDGERGUARD_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        env_nested_delimiter="__",
    )

    environment: Literal["development", "test", "production"] = "development"

    # --- local state and servers ------------------------------------------------------------
    home: Path = Path(".ledgerguard")
    bind_address: str = "127.0.0.1"
    primary_host: str = "127.0.0.1"
    primary_port: int = Field(3306, ge=1, le=65535)
    replica_host: str = "127.0.0.1"
    replica_port: int = Field(3307, ge=1, le=65535)
    database: str = Field("ledgerguard", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    innodb_buffer_pool_size: str = Field("1G", pattern=r"^\d+[KMG]?$")
    replica_innodb_buffer_pool_size: str = Field("1G", pattern=r"^\d+[KMG]?$")
    replica_parallel_threads: int = Field(4, ge=0, le=256)
    max_connections: int = Field(500, ge=10)
    #: Semi-synchronous replication: a commit waits for the replica's acknowledgement at most
    #: this long (ms), then continues asynchronously until the replica catches up. 0 disables.
    semi_sync_timeout_ms: int = Field(1000, ge=0, le=600_000)
    mariadbd_path: str = "mariadbd"
    install_db_path: str = "mariadb-install-db"
    start_timeout: float = Field(60.0, gt=0)

    # --- database accounts (least privilege; see README "Users") ----------------------------
    mysql_root_password: SecretStr = _secret("MYSQL_ROOT_PASSWORD", "LEDGERGUARD_ROOT_PASSWORD")
    replica_user: str = Field(
        "app_user", validation_alias=AliasChoices("REPLICA_USER", "LEDGERGUARD_REPLICA_USER")
    )
    replica_password: SecretStr = _secret("REPLICA_PASSWORD", "LEDGERGUARD_REPLICA_PASSWORD")
    repl_user: str = Field(
        "repl_user", validation_alias=AliasChoices("REPL_USER", "LEDGERGUARD_REPL_USER")
    )
    repl_password: SecretStr = _secret("REPL_PASSWORD", "LEDGERGUARD_REPL_PASSWORD")
    api_db_user: str = "api_user"
    api_db_password: SecretStr = _secret("LEDGERGUARD_API_DB_PASSWORD")
    migrate_user: str = "migrate_user"
    migrate_password: SecretStr = _secret("LEDGERGUARD_MIGRATE_PASSWORD")

    monitor_user: str = "monitor_user"
    monitor_password: SecretStr = _secret("LEDGERGUARD_MONITOR_PASSWORD")

    # --- API ---------------------------------------------------------------------------------
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    #: Gunicorn workers; 0 = one per CPU core (the DB servers need the rest of the machine).
    api_workers: int = Field(0, ge=0, le=64)
    #: DB connections per worker and server.
    api_pool_size: int = Field(20, ge=1, le=500)
    #: Requests per second allowed per API key (token bucket, burst = 2x); 0 disables.
    api_rate_limit: float = Field(2000.0, ge=0)
    #: Largest accepted request body in bytes (413 beyond).
    api_max_body_bytes: int = Field(16_384, ge=256)
    #: Seconds a read with a `consistent_after` token waits for the replica before the primary.
    read_your_writes_timeout: float = Field(2.0, gt=0, le=60)

    # --- analyst web app (ledgerguard.web, served by the API under /review) ------------------
    #: Minutes a login session lasts (the cookie and the server-side row expire together).
    web_session_minutes: int = Field(480, ge=1, le=7 * 24 * 60)
    #: Failed passwords in a row that lock an account, and for how many seconds.
    web_login_max_failures: int = Field(5, ge=1, le=100)
    web_lockout_seconds: int = Field(900, ge=1)
    #: Login attempts per client address and minute (per API worker); 0 disables.
    web_login_attempts_per_minute: int = Field(30, ge=0)
    #: Session cookie `Secure` flag: `auto` = when the request came over https.
    web_cookie_secure: Literal["auto", "always", "never"] = "auto"
    #: Four eyes: clearing an alert scored at or above this as legitimate needs a second person.
    web_four_eyes_score: Decimal = Field(Decimal("0.9"), ge=0, le=1)
    #: Alerts per queue page.
    web_page_size: int = Field(50, ge=5, le=500)

    # --- analytics ---------------------------------------------------------------------------
    reports_dir: Path = Path("reports")
    #: Seconds the analysis waits for the replica to apply what the primary has committed
    #: before reading (verdicts of earlier runs, this run's verdicts for the reports).
    replica_catch_up_timeout: float = Field(300.0, gt=0)
    fraud: FraudParameters = FraudParameters()

    # --- Airflow (local `airflow standalone`) -------------------------------------------------
    airflow_port: int = Field(8080, ge=1, le=65535)
    #: Airflow's worker and triggerer log servers (its defaults); tests pick free ones so two
    #: Airflows on one machine do not fight over them.
    airflow_worker_log_port: int = Field(8793, ge=1, le=65535)
    airflow_trigger_log_port: int = Field(8794, ge=1, le=65535)
    airflow_admin_user: str = Field(
        "admin",
        validation_alias=AliasChoices("AIRFLOW_ADMIN_USER", "LEDGERGUARD_AIRFLOW_ADMIN_USER"),
    )
    airflow_admin_password: SecretStr = Field(
        SecretStr("admin"),
        validation_alias=AliasChoices(
            "AIRFLOW_ADMIN_PASSWORD", "LEDGERGUARD_AIRFLOW_ADMIN_PASSWORD"
        ),
    )

    # --- monitoring (local Prometheus + mysqld-exporter from Debian) -------------------------
    prometheus_port: int = Field(9090, ge=1, le=65535)
    primary_exporter_port: int = Field(9104, ge=1, le=65535)
    replica_exporter_port: int = Field(9105, ge=1, le=65535)
    scrape_interval_seconds: int = Field(15, ge=1)

    # --- real-time scorer (`ledgerguard scorer`, ledgerguard.realtime) -------------------------
    #: Port of the scorer's Prometheus metrics (partition K/N listens on this + K).
    scorer_metrics_port: int = Field(9108, ge=1, le=65535)
    #: Micro-batch: the transactions that arrived within this many ms are scored together.
    scorer_batch_ms: int = Field(100, ge=1, le=5000)
    #: POST one signed JSON body per flagged transaction here (http or https only); unset: none.
    alert_webhook_url: str | None = None
    #: HMAC-SHA256 secrets, comma-separated: every one signs each delivery, so a receiver can
    #: rotate by accepting the new secret before the old one is removed here.
    alert_webhook_secrets: SecretStr | None = None
    #: Seconds one delivery attempt may take (connect + answer); redirects are not followed.
    alert_webhook_timeout: float = Field(5.0, gt=0, le=60)
    #: Hours of retries (exponential backoff) before an alert becomes a dead letter.
    alert_retry_hours: float = Field(24.0, gt=0, le=24 * 30)

    @model_validator(mode="after")
    def _webhook_url_is_http(self) -> Settings:
        url = self.alert_webhook_url
        if url is not None and not url.strip():
            self.alert_webhook_url = None  # an empty variable means unset
        elif url is not None and not url.lower().startswith(("http://", "https://")):
            raise ValueError(
                f"LEDGERGUARD_ALERT_WEBHOOK_URL must be an http:// or https:// URL (got {url!r})"
            )
        return self

    @model_validator(mode="after")
    def _refuse_dev_secrets_outside_development(self) -> Settings:
        if self.environment == "development":
            return self
        for name in (
            "mysql_root_password",
            "replica_password",
            "repl_password",
            "api_db_password",
            "migrate_password",
            "monitor_password",
            "airflow_admin_password",
        ):
            if getattr(self, name).get_secret_value() in DEV_PASSWORDS:
                raise ValueError(
                    f"{name} uses a development value from .env.example; set a real secret "
                    f"when LEDGERGUARD_ENVIRONMENT={self.environment}"
                )
        return self

    def to_env(self) -> dict[str, str]:
        """Environment variables that rebuild exactly these settings in a child process.

        Child processes (Gunicorn workers, Airflow tasks, exporters' wrappers) build their own
        `Settings()`; passing this environment makes them see what the parent saw, whatever the
        child's working directory or `.env` holds.
        """
        env: dict[str, str] = {}
        for name, info in type(self).model_fields.items():
            value = getattr(self, name)
            alias = info.validation_alias
            key = (
                alias.choices[0]
                if isinstance(alias, AliasChoices)
                else f"LEDGERGUARD_{name.upper()}"
            )
            if isinstance(value, BaseModel):
                for sub, sub_value in value.model_dump(mode="json").items():
                    if sub_value is None:  # unset stays unset (the string "None" is a value)
                        continue
                    text = (
                        json.dumps(sub_value)
                        if isinstance(sub_value, list | dict)
                        else str(sub_value)
                    )
                    env[f"{key}__{sub.upper()}"] = text
                continue
            if value is None:  # unset stays unset (the string "None" is a value)
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            env[str(key)] = str(value)
        return env

    @property
    def workers(self) -> int:
        """API worker processes: `api_workers`, or one per CPU core when 0."""
        return self.api_workers or os.cpu_count() or 1

    @property
    def state_dir(self) -> Path:
        """Absolute state directory, so server processes never depend on the caller's cwd."""
        return self.home.expanduser().resolve()
