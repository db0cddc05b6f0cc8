"""Engines for the two servers, each opened with the account its job needs.

* `primary_engine`: the API's least-privilege account (SELECT/INSERT/UPDATE) on the primary.
* `replica_engine`: `app_user` (SELECT only) on the replica; reads and analytics go here.
* `migration_url`: the DDL account, used by Alembic on the primary only.

Engines are built by the caller (app factory, CLI command, DAG task) and disposed by it; nothing
here caches one.
"""

from __future__ import annotations

from typing import Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ledgerguard.settings import Settings

Role = Literal["primary", "replica"]


def server_url(
    settings: Settings, role: Role, *, user: str, password: str, driver: str = "asyncmy"
) -> sa.URL:
    """URL of the application database on the primary or the replica (TCP)."""
    host, port = (
        (settings.primary_host, settings.primary_port)
        if role == "primary"
        else (settings.replica_host, settings.replica_port)
    )
    return sa.URL.create(
        f"mysql+{driver}",
        username=user,
        password=password,
        host=host,
        port=port,
        database=settings.database,
        query={"charset": "utf8mb4"},
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
    settings: Settings, *, pool_size: int = 20, server: Role = "primary"
) -> AsyncEngine:
    """Async engine for writes, as the API account (on the primary unless `server` says)."""
    url = server_url(
        settings,
        server,
        user=settings.api_db_user,
        password=settings.api_db_password.get_secret_value(),
    )
    return _async_engine(url, pool_size)


def replica_engine(
    settings: Settings, *, pool_size: int = 20, server: Role = "replica"
) -> AsyncEngine:
    """Async engine for reads, as `app_user` (on the replica unless `server` says)."""
    url = server_url(
        settings,
        server,
        user=settings.replica_user,
        password=settings.replica_password.get_secret_value(),
    )
    return _async_engine(url, pool_size)
