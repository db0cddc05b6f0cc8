"""Session fixtures shared by every test folder: a real throw-away cluster on free ports.

The cluster is started once per session in a temporary state directory, with small buffer pools,
and stopped at the end even when tests fail. Nothing here touches the configured (demo) cluster or
the fixed ports 3306/3307/8000/8080/9090.
"""

from __future__ import annotations

import os

# before any `ledgerguard` import: no test reads the checkout's `.env` (`settings.ENV_FILE`)
os.environ["LEDGERGUARD_ENV_FILE"] = ""

from collections.abc import Iterator

import pytest

from ledgerguard.cluster.local import LocalCluster
from ledgerguard.settings import Settings
from tests.support import make_key, make_settings


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("lg"))


@pytest.fixture(scope="session")
def cluster(settings: Settings) -> Iterator[LocalCluster]:
    """A running, migrated, replicating cluster for the whole session."""
    local = LocalCluster(settings)
    try:
        local.up()
        yield local
    finally:
        from ledgerguard.backup.archiver import stop_archiver

        try:
            stop_archiver(settings)  # `ledgerguard up` and the backup tests start it
            local.down()
        finally:
            for role in ("replica", "primary"):
                local.server(role).kill()


@pytest.fixture
def healthy_cluster(cluster: LocalCluster) -> LocalCluster:
    """The session cluster, restarted and reconnected if an earlier test left it degraded."""
    if not cluster.status().healthy:
        cluster.up()
    return cluster


@pytest.fixture(scope="session")
def api_url(cluster: LocalCluster, settings: Settings) -> Iterator[str]:
    """The real API (Gunicorn, Uvicorn workers) in the background on a free port."""
    from ledgerguard.api.server import start_background, stop_background

    start_background(settings)
    try:
        yield f"http://{settings.api_host}:{settings.api_port}"
    finally:
        stop_background(settings)


@pytest.fixture(scope="session")
def api_key(cluster: LocalCluster, settings: Settings) -> str:
    """A key with transactions:write and transactions:read."""
    return make_key(settings, "session-rw", ("transactions:read", "transactions:write"))
