"""The one configuration object of LedgerGuard.

Every setting is read from the environment or from `.env` (in the working directory). Names are
`LEDGERGUARD_*`, except the secrets of the original design, which keep their original names
(`MYSQL_ROOT_PASSWORD`, `REPLICA_USER`, `REPLICA_PASSWORD`, `REPL_USER`, `REPL_PASSWORD`,
`AIRFLOW_*`) so an existing `.env` keeps working; `LEDGERGUARD_`-prefixed spellings of those are
accepted too.

Secrets have no default: a missing one is an error that names the variable. Outside development
(`LEDGERGUARD_ENVIRONMENT` other than `development`) the dev values shipped in `.env.example` are
refused, so a demo configuration cannot reach production by accident (the policy and the
placeholder of a withheld secret: `ledgerguard.settings.secrets`).

Nothing here is a module-level singleton: callers build `Settings()` once at their edge (CLI
callback, app factory, DAG task) and pass it down.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledgerguard.settings.fraud import FraudParameters
from ledgerguard.settings.secrets import (
    DEV_PASSWORDS,
    MIN_SECRET_LENGTH,
    SECRET_FIELDS,
    WITHHELD,
    WithheldSecret,
    secret_field,
)

#: The file `Settings` read besides the environment: `.env` in the working directory, or the
#: path in `LEDGERGUARD_ENV_FILE` (empty: none). The test session sets it empty, so a checkout
#: where `make demo` wrote `.env` (development secrets) does not leak it into `make test`,
#: whose `LEDGERGUARD_ENVIRONMENT=test` refuses those values (found in session 15). Read once,
#: when this module is imported; subprocesses inherit the variable.
ENV_FILE: str | None = os.environ.get("LEDGERGUARD_ENV_FILE", ".env") or None


class Settings(BaseSettings):
    """Configuration of the whole platform; see `.env.example` for every name with a comment."""

    model_config = SettingsConfigDict(
        env_prefix="LEDGERGUARD_",
        env_file=ENV_FILE,
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
    #: Seconds failover gives a stalled old primary to answer, then to stop (SIGTERM) before
    #: SIGKILL; also the read timeout of its admin connection during failover.
    fence_timeout: float = Field(5.0, gt=0, le=120)

    # --- database accounts (least privilege; see README "Users") ----------------------------
    mysql_root_password: SecretStr = secret_field(
        "MYSQL_ROOT_PASSWORD", "LEDGERGUARD_ROOT_PASSWORD"
    )
    replica_user: str = Field(
        "app_user", validation_alias=AliasChoices("REPLICA_USER", "LEDGERGUARD_REPLICA_USER")
    )
    replica_password: SecretStr = secret_field("REPLICA_PASSWORD", "LEDGERGUARD_REPLICA_PASSWORD")
    repl_user: str = Field(
        "repl_user", validation_alias=AliasChoices("REPL_USER", "LEDGERGUARD_REPL_USER")
    )
    repl_password: SecretStr = secret_field("REPL_PASSWORD", "LEDGERGUARD_REPL_PASSWORD")
    api_db_user: str = "api_user"
    api_db_password: SecretStr = secret_field("LEDGERGUARD_API_DB_PASSWORD")
    migrate_user: str = "migrate_user"
    migrate_password: SecretStr = secret_field("LEDGERGUARD_MIGRATE_PASSWORD")

    monitor_user: str = "monitor_user"
    monitor_password: SecretStr = secret_field("LEDGERGUARD_MONITOR_PASSWORD")
    #: Backups, verify and the binlog archiver (and so `00_nightly_backup`): only what
    #: mariadb-backup / the dump, the binlog stream and the comparison with the replica need.
    backup_user: str = "backup_user"
    backup_password: SecretStr = secret_field("LEDGERGUARD_BACKUP_PASSWORD")

    # --- API ---------------------------------------------------------------------------------
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    #: Gunicorn workers; 0 = one per CPU core (the DB servers need the rest of the machine).
    api_workers: int = Field(0, ge=0, le=64)
    #: DB connections per worker and server.
    api_pool_size: int = Field(20, ge=1, le=500)
    #: Requests per second allowed per API key (token bucket, burst = 2x); 0 disables.
    api_rate_limit: float = Field(2000.0, ge=0)
    #: Failed authentications (no key, unknown or revoked key) per second per client address,
    #: checked before any key lookup; beyond, 429. Behind a reverse proxy every client shares
    #: the proxy's address: limit there instead, or raise this. 0 disables.
    api_unauthenticated_rate_limit: float = Field(20.0, ge=0)
    #: Networks (comma-separated CIDRs) that may read /metrics without a key; anyone else
    #: needs a key with the `metrics` scope. Compose adds its container network (Prometheus).
    metrics_allow_from: str = "127.0.0.0/8,::1/128"
    #: Writes waiting for a commit per API worker; beyond, POST answers 503 with Retry-After.
    write_queue_size: int = Field(2000, ge=1, le=1_000_000)
    #: Seconds a POST waits for its commit before answering 503 (bounded even on a stalled primary).
    write_timeout: float = Field(5.0, gt=0, le=600)
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
    #: Login attempts per client address and minute (one count shared by all API workers); 0
    #: disables.
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
    #: Grafana's admin password (Compose only); checked like every secret when set.
    grafana_admin_password: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices(
            "GRAFANA_ADMIN_PASSWORD", "LEDGERGUARD_GRAFANA_ADMIN_PASSWORD"
        ),
    )
    #: Serve the interactive `/docs`, `/redoc` and `/openapi.json` (refused in production).
    api_docs: bool = True
    #: Comma-separated secret fields this process was started without (set by the parent, see
    #: `to_env`); using one raises `SecretWithheld`.
    withheld_secrets: str = ""

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
    #: CPU priority of the scorer (added niceness, 0-19): on a machine it shares with the API
    #: and the servers, the write path comes first and scoring takes the idle CPU.
    scorer_nice: int = Field(10, ge=0, le=19)
    #: POST one signed JSON body per flagged transaction here (http or https only); unset: none.
    alert_webhook_url: str | None = None
    #: HMAC-SHA256 secrets, comma-separated: every one signs each delivery, so a receiver can
    #: rotate by accepting the new secret before the old one is removed here.
    alert_webhook_secrets: SecretStr | None = None
    #: Seconds one delivery attempt may take (connect + answer); redirects are not followed.
    alert_webhook_timeout: float = Field(5.0, gt=0, le=60)
    #: Hours of retries (exponential backoff) before an alert becomes a dead letter.
    alert_retry_hours: float = Field(24.0, gt=0, le=24 * 30)

    # --- backups and point-in-time recovery (ledgerguard.backup) -----------------------------
    #: Where backups and the binlog archive live; empty = `<LEDGERGUARD_HOME>/backups`.
    backup_dir: Path | None = None
    #: Retention: the newest backup of each of this many days is kept ...
    backup_keep_daily: int = Field(7, ge=1)
    #: ... and the newest of each of this many ISO weeks (binlogs back to the oldest kept one).
    backup_keep_weekly: int = Field(4, ge=0)
    #: `physical` (mariadb-backup, MariaDB only) or `logical` (mariadb-dump / mysqldump);
    #: empty = physical on MariaDB, logical on MySQL (see `ledgerguard.backup.logical`).
    backup_method: Literal["physical", "logical"] | None = None
    #: zstd level of backup files (1 fast .. 19 small).
    backup_zstd_level: int = Field(3, ge=1, le=19)
    #: Port of the binlog archiver's /metrics (archive lag, newest verified backup age).
    backup_metrics_port: int = Field(9106, ge=1, le=65535)
    #: An external, empty server that `backup verify` and `restore` load logical backups into
    #: instead of starting a local `mariadbd` (Compose: the `backup-scratch` service, whose
    #: containers have no server binary); empty = a local scratch server on a free port.
    backup_scratch_host: str = ""
    backup_scratch_port: int = Field(3306, ge=1, le=65535)
    #: Its administrative account (loads the dump, resets its GTID state, follows the replica).
    backup_scratch_user: str = "root"
    backup_scratch_password: SecretStr | None = None

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

    @field_validator("backup_method", mode="before")
    @classmethod
    def _empty_method_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _withhold_and_check_secrets(self) -> Settings:
        withheld = {name for name in self.withheld_secrets.split(",") if name}
        unknown = withheld - set(SECRET_FIELDS)
        if unknown:
            raise ValueError(f"LEDGERGUARD_WITHHELD_SECRETS names no secret: {sorted(unknown)}")
        for name in withheld:
            setattr(self, name, WithheldSecret(name))
        if self.environment == "development":
            return self
        for name in SECRET_FIELDS:
            secret = getattr(self, name)
            if name in withheld or secret is None:
                continue
            value = secret.get_secret_value()
            if value in DEV_PASSWORDS:
                raise ValueError(
                    f"{name} uses a development value from .env.example; set a real secret "
                    f"when LEDGERGUARD_ENVIRONMENT={self.environment}"
                )
            if self.environment == "production" and len(value) < MIN_SECRET_LENGTH:
                raise ValueError(
                    f"{name} is {'empty' if not value else 'too short'}: use at least "
                    f"{MIN_SECRET_LENGTH} characters when LEDGERGUARD_ENVIRONMENT="
                    f"{self.environment}"
                )
        if self.environment == "production":
            if self.api_rate_limit == 0:
                raise ValueError(
                    "LEDGERGUARD_API_RATE_LIMIT=0 disables the per-key rate limit: refused in "
                    "production"
                )
            if self.api_docs:
                raise ValueError(
                    "the interactive API docs are on: set LEDGERGUARD_API_DOCS=false in production"
                )
        return self

    def to_env(self, *, secrets: Collection[str] | None = None) -> dict[str, str]:
        """Environment variables that rebuild exactly these settings in a child process.

        Child processes (Gunicorn workers, Airflow tasks, exporters' wrappers) build their own
        `Settings()`; passing this environment makes them see what the parent saw, whatever the
        child's working directory or `.env` holds. With `secrets`, only those secret fields are
        passed: every other one is withheld (its variable holds a placeholder, which also hides
        a `.env` value, and `LEDGERGUARD_WITHHELD_SECRETS` lists it). Start the child from
        `without_secrets(os.environ) | settings.to_env(secrets=...)`.
        """
        env: dict[str, str] = {}
        withheld = [
            name
            for name in SECRET_FIELDS
            if isinstance(getattr(self, name), WithheldSecret)
            or (secrets is not None and name not in secrets)
        ]
        for name in type(self).model_fields:
            value = getattr(self, name)
            key = _env_name(name)
            if name in withheld:
                env[key] = WITHHELD
                continue
            if name == "withheld_secrets":
                env[key] = ",".join(withheld)
                continue
            if value is None:
                continue
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
    def backups_root(self) -> Path:
        """Absolute folder of backups and the binlog archive (`backup_dir` or under home)."""
        folder = self.backup_dir if self.backup_dir is not None else self.home / "backups"
        return folder.expanduser().resolve()

    @property
    def state_dir(self) -> Path:
        """Absolute state directory, so server processes never depend on the caller's cwd."""
        return self.home.expanduser().resolve()


class FraudSettings(BaseSettings):
    """The fraud engine's parameters alone, read exactly as `Settings.fraud` is
    (`LEDGERGUARD_FRAUD__*`, the environment, then `.env`).

    For the commands that score or train on files in memory and reach no server (`ledgerguard
    fraud evaluate`, `fraud train` from CSV files): an analyst judging the engine on a labelled
    file needs none of the platform's database passwords, which `Settings` rightly refuses to
    run without.
    """

    model_config = Settings.model_config
    fraud: FraudParameters = FraudParameters()


def _env_name(field: str) -> str:
    """The variable `to_env` writes for a field: its first alias, else LEDGERGUARD_<NAME>."""
    alias = Settings.model_fields[field].validation_alias
    return alias.choices[0] if isinstance(alias, AliasChoices) else f"LEDGERGUARD_{field.upper()}"


def without_secrets(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` without any variable that can carry a secret (every alias of every secret
    field), as the base environment of a child that must get only the secrets it is given."""
    names: set[str] = set()
    for field in SECRET_FIELDS:
        alias = Settings.model_fields[field].validation_alias
        if isinstance(alias, AliasChoices):
            names |= {str(choice) for choice in alias.choices}
        names.add(f"LEDGERGUARD_{field.upper()}")
    return {key: value for key, value in environ.items() if key.upper() not in names}
