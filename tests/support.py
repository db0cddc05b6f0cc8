"""Helpers for tests: test settings on free ports, environment for CLI runs, connections."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pymysql

from ledgerguard.cluster.admin import admin_connection, run
from ledgerguard.cluster.local import LocalCluster
from ledgerguard.db.dialect import Statement
from ledgerguard.settings import Settings

TEST_SECRETS = {
    "mysql_root_password": "t-root-secret",
    "replica_password": "t-app-secret",
    "repl_password": "t-repl-secret",
    "api_db_password": "t-api-secret",
    "migrate_password": "t-migrate-secret",
    "monitor_password": "t-monitor-secret",
    "backup_password": "t-backup-secret",
    "airflow_admin_password": "t-airflow-secret",
}


def free_ports(count: int) -> list[int]:
    """Ports the kernel says are free right now (held open together so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def make_settings(home: Path, **overrides: object) -> Settings:
    """Test settings: free ports, small pools, no `.env` read."""
    (
        primary_port,
        replica_port,
        api_port,
        prometheus,
        exporter_1,
        exporter_2,
        airflow,
        airflow_worker_log,
        airflow_trigger_log,
        scorer,
        backup_metrics,
    ) = free_ports(11)
    values: dict[str, object] = {
        "environment": "test",
        "home": home,
        "primary_port": primary_port,
        "replica_port": replica_port,
        "api_port": api_port,
        # never the fixed demo ports (9090/9104/9105/8080), so suites run beside a demo
        "prometheus_port": prometheus,
        "primary_exporter_port": exporter_1,
        "replica_exporter_port": exporter_2,
        "airflow_port": airflow,
        "airflow_worker_log_port": airflow_worker_log,
        "airflow_trigger_log_port": airflow_trigger_log,
        "scorer_metrics_port": scorer,
        "backup_metrics_port": backup_metrics,
        "innodb_buffer_pool_size": "128M",
        "replica_innodb_buffer_pool_size": "128M",
        "max_connections": 300,
        "reports_dir": home / "reports",
        "web_page_size": 5,  # the queue's keyset pages show up with a few alerts
        "web_login_attempts_per_minute": 1000,  # many logins from 127.0.0.1 in the suite
        # the model store of the test home, never the working directory's `models/`
        "fraud": {"model_store_dir": home / "models"},
        **TEST_SECRETS,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment variables that reproduce `settings` (for CLI runs and subprocesses)."""
    return settings.to_env()


def connect(
    settings: Settings, role: str, *, user: str, password: str, database: bool = True
) -> pymysql.connections.Connection:
    """A TCP connection as `user` to the primary or the replica, autocommit."""
    port = settings.primary_port if role == "primary" else settings.replica_port
    return pymysql.connect(
        host="127.0.0.1",
        port=port,
        user=user,
        password=password,
        database=settings.database if database else None,
        autocommit=True,
    )


def api_conn(settings: Settings, role: str = "primary") -> pymysql.connections.Connection:
    return connect(
        settings,
        role,
        user=settings.api_db_user,
        password=settings.api_db_password.get_secret_value(),
    )


def analytics_conn(settings: Settings, role: str = "replica") -> pymysql.connections.Connection:
    return connect(
        settings,
        role,
        user=settings.replica_user,
        password=settings.replica_password.get_secret_value(),
    )


def make_key(
    settings: Settings, name: str, scopes: tuple[str, ...], *, merchant_id: int | None = None
) -> str:
    """Create an API key directly in the database (as `apikey create` does); returns it."""
    from ledgerguard.db.api_keys import create_api_key
    from ledgerguard.db.engines import migration_engine

    engine = migration_engine(settings)
    try:
        with engine.begin() as conn:
            _, plain = create_api_key(conn, name=name, scopes=scopes, merchant_id=merchant_id)
    finally:
        engine.dispose()
    return plain


@contextlib.contextmanager
def replica_sql_thread_stopped(cluster: LocalCluster, settings: Settings) -> Iterator[None]:
    """The replica's SQL thread stopped for the block (it still receives, applies nothing);
    started again after it, and the replica waited for."""
    replica = cluster.specs["replica"]
    password = settings.mysql_root_password.get_secret_value()
    with admin_connection(replica, password=password) as conn:
        run(conn, Statement("STOP SLAVE SQL_THREAD"))
    try:
        yield
    finally:
        with admin_connection(replica, password=password) as conn:
            run(conn, Statement("START SLAVE SQL_THREAD"))
        cluster.wait_for_replica(timeout=30)


Scenario = Callable[[httpx.AsyncClient, Any], Awaitable[Any]]


async def with_app(settings: Settings, scenario: Scenario) -> Any:
    """Run `scenario(client, services)` against an in-process app with its own settings (the
    factory's lifespan, the real cluster)."""
    from ledgerguard.api.main import create_app

    app = create_app(settings, workers=1)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await scenario(client, app.state.services)
