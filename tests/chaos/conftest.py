"""A cluster and API of their own for fault injection (failover changes the topology)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ledgerguard.api.server import start_background, stop_background
from ledgerguard.cluster.local import LocalCluster
from ledgerguard.settings import Settings
from tests.support import make_key, make_settings


@pytest.fixture(scope="module")
def chaos_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("chaos"), api_workers=2)


@pytest.fixture(scope="module")
def chaos_cluster(chaos_settings: Settings) -> Iterator[LocalCluster]:
    cluster = LocalCluster(chaos_settings)
    try:
        cluster.up()
        yield cluster
    finally:
        for role in ("replica", "primary"):
            LocalCluster(chaos_settings).server(role).kill()


@pytest.fixture(scope="module")
def chaos_api(chaos_cluster: LocalCluster, chaos_settings: Settings) -> Iterator[str]:
    start_background(chaos_settings)
    try:
        yield f"http://{chaos_settings.api_host}:{chaos_settings.api_port}"
    finally:
        stop_background(chaos_settings)


@pytest.fixture(scope="module")
def chaos_key(chaos_cluster: LocalCluster, chaos_settings: Settings) -> str:
    return make_key(chaos_settings, "chaos", ("transactions:read", "transactions:write"))
