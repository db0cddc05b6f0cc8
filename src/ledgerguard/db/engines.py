"""Every engine of the application, each opened with the account its job needs.

Async (the API):

* `primary_engine`: the API's least-privilege account (SELECT/INSERT/UPDATE) on the primary.
* `replica_engine`: `app_user` (SELECT only) on the replica; reads go here.

Sync, without a pool (batch jobs, CLI commands, health checks: one job, one connection):

* `writer_engine`: the API account on the primary (fraud verdicts, imports, labels).
* `bulk_load_engine`: the same with `LOAD DATA LOCAL` confined to the file the importer names
  (`ledgerguard.db.local_infile`).
* `analytics_engine`: `app_user` on the replica (the nightly analysis, reports).
* `migration_engine`: the DDL account on the primary (Alembic, API keys, the demo's key).
* `sync_engine`: any of the URLs below, e.g. with autocommit for health checks.

This is the one place that builds an engine: a connection option (timeouts, pooling) changes here
for every caller. Engines are built by the caller (app factory, CLI command, DAG task) and disposed
by it; nothing here caches one.

Roles resolve through the recorded topology (`ledgerguard.db.topology`): after a failover
"primary" is the promoted server for every caller, never the configured address by default.
"""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ledgerguard.db.topology import acting_address, configured_address
from ledgerguard.settings import Settings

Role = Literal["primary", "replica"]


def server_url(
    settings: Settings,
    role: Role,
    *,
    user: str,
    password: str,
    driver: str = "asyncmy",
    node: Role | None = None,
) -> sa.URL:
    """URL of the application database on the acting primary or replica (TCP); with `node`, on
    that configured server whatever its role (the API's topology watches both)."""
    host, port = configured_address(settings, node) if node else acting_address(settings, role)
    return sa.URL.create(
        f"mysql+{driver}",
        username=user,
        password=password,
        host=host,
        port=port,
        database=settings.database,
        query={"charset": "utf8mb4"},
    )


def api_url(settings: Settings, *, driver: str = "asyncmy", node: Role | None = None) -> sa.URL:
    """The API's least-privilege account on the acting primary (or on the configured `node`)."""
    return server_url(
        settings,
        "primary",
        user=settings.api_db_user,
        password=settings.api_db_password.get_secret_value(),
        driver=driver,
        node=node,
    )


def migration_url(settings: Settings) -> sa.URL:
    """The DDL account on the primary, sync driver (Alembic)."""
    return server_url(
        settings,
        "primary",
        user=settings.migrate_user,
        password=settings.migrate_password.get_secret_value(),
        driver="pymysql",
    )


def analytics_url(settings: Settings, *, driver: str = "pymysql") -> sa.URL:
    """`app_user` on the replica: the read-only account for reports and batch analysis."""
    return server_url(
        settings,
        "replica",
        user=settings.replica_user,
        password=settings.replica_password.get_secret_value(),
        driver=driver,
    )


def _async_engine(url: sa.URL, pool_size: int) -> AsyncEngine:
    # connect_timeout keeps a dead server from stalling requests (refused is instant, a
    # black-holed host is not)
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_pre_ping=True,
        pool_recycle=3600,
        connect_args={"connect_timeout": 3},
    )


def primary_engine(
    settings: Settings, *, pool_size: int = 20, node: Role | None = None
) -> AsyncEngine:
    """Async engine for writes, as the API account (on the acting primary unless `node` names a
    configured server)."""
    return _async_engine(api_url(settings, node=node), pool_size)


def replica_engine(
    settings: Settings, *, pool_size: int = 20, node: Role | None = None
) -> AsyncEngine:
    """Async engine for reads, as `app_user` (on the acting replica unless `node` names a
    configured server)."""
    url = server_url(
        settings,
        "replica",
        user=settings.replica_user,
        password=settings.replica_password.get_secret_value(),
        node=node,
    )
    return _async_engine(url, pool_size)


def sync_engine(
    url: sa.URL,
    *,
    autocommit: bool = False,
    connect_timeout: float | None = None,
    keep_open: bool = False,
    **connect_args: Any,
) -> sa.Engine:
    """A sync engine without a pool (NullPool): each `connect()` opens and closes a connection.

    `autocommit` suits probes that must see the server's current state on every statement (a GTID
    wait, a variable read); `connect_args` go to the driver (e.g. `local_infile=True`).
    `keep_open` is for long-running loops that connect many times a second (the streaming
    scorer): a small pool keeps the connections, checked with a ping before each use, instead of
    a TCP handshake, TLS context and login on both ends every time.
    """
    if connect_timeout is not None:
        connect_args["connect_timeout"] = connect_timeout
    options: dict[str, Any] = {"isolation_level": "AUTOCOMMIT"} if autocommit else {}
    if keep_open:
        options |= {"pool_size": 2, "max_overflow": 2, "pool_pre_ping": True}
        options["pool_recycle"] = 3600
    else:
        options["poolclass"] = sa.pool.NullPool
    return sa.create_engine(url, connect_args=connect_args, **options)


def writer_engine(settings: Settings, *, keep_open: bool = False, **connect_args: Any) -> sa.Engine:
    """A sync engine for the API account on the primary, no pool (batch jobs) unless
    `keep_open` (see `sync_engine`)."""
    return sync_engine(api_url(settings, driver="pymysql"), keep_open=keep_open, **connect_args)


def bulk_load_engine(settings: Settings) -> sa.Engine:
    """`writer_engine` whose connections send a local file only while the caller allows it
    (`ConfinedLocalInfileConnection.allow_local_file`), and only the file it names."""
    from ledgerguard.db.local_infile import ConfinedLocalInfileConnection

    engine = writer_engine(settings)

    @sa.event.listens_for(engine, "do_connect")
    def _confined(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        return ConfinedLocalInfileConnection(*cargs, **cparams)

    return engine


def analytics_engine(settings: Settings, *, keep_open: bool = False) -> sa.Engine:
    """A sync engine for `app_user` on the replica, no pool (one batch job, one connection)
    unless `keep_open` (see `sync_engine`)."""
    return sync_engine(analytics_url(settings), keep_open=keep_open)


def migration_engine(settings: Settings) -> sa.Engine:
    """A sync engine for the DDL account on the primary (Alembic, API keys), no pool."""
    return sync_engine(migration_url(settings))
