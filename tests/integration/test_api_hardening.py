"""Cheap answers to unauthenticated and forged requests, on in-process apps with their own
settings (the factory's lifespan, the real cluster)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from ledgerguard.api.main import create_app
from ledgerguard.api.services import KeyCache
from ledgerguard.cluster.local import LocalCluster
from ledgerguard.settings import Settings
from tests.support import with_app


def test_future_consistent_after_is_400_at_once(
    healthy_cluster: LocalCluster, settings: Settings, api_key: str
):
    async def scenario(client: httpx.AsyncClient, services: Any) -> httpx.Response:
        return await client.get(
            "/transactions/1",
            params={"consistent_after": "0-1-999999999999"},
            headers={"X-API-Key": api_key},
        )

    response = asyncio.run(with_app(settings, scenario))
    assert response.status_code == 400, response.text
    assert "has not committed" in response.json()["detail"]


def test_failed_authentications_are_limited_per_address_before_any_lookup(
    healthy_cluster: LocalCluster, settings: Settings
):
    tight = settings.model_copy(update={"api_unauthenticated_rate_limit": 2.0})  # burst 4

    async def scenario(client: httpx.AsyncClient, services: Any) -> tuple[list[int], int]:
        lookups = 0
        real_get = services.keys.get

        async def counting_get(prefix: str) -> Any:
            nonlocal lookups
            lookups += 1
            return await real_get(prefix)

        services.keys.get = counting_get
        codes = []
        for n in range(20):
            response = await client.get(
                "/transactions/1", headers={"X-API-Key": f"lg_{n:012d}_forged-secret"}
            )
            codes.append(response.status_code)
        return codes, lookups

    codes, lookups = asyncio.run(with_app(tight, scenario))
    assert codes[:4] == [401] * 4, codes
    assert codes[4:] == [429] * 16, codes
    assert lookups == 4, lookups


def test_ready_is_computed_once_for_a_burst(healthy_cluster: LocalCluster, settings: Settings):
    async def scenario(client: httpx.AsyncClient, services: Any) -> tuple[list[int], int]:
        responses = await asyncio.gather(*(client.get("/ready") for _ in range(30)))
        return [r.status_code for r in responses], services.readiness.computed

    codes, computed = asyncio.run(with_app(settings, scenario))
    assert codes == [200] * 30
    assert computed == 1, computed


def test_state_dir_is_owner_only_and_the_api_gets_only_its_secrets(
    healthy_cluster: LocalCluster, settings: Settings
):
    import os
    import stat

    from ledgerguard.api.server import gunicorn_command
    from tests.support import TEST_SECRETS

    assert stat.S_IMODE(settings.state_dir.stat().st_mode) == 0o700
    os.environ["MYSQL_ROOT_PASSWORD"] = TEST_SECRETS["mysql_root_password"]  # inherited
    try:
        _, env = gunicorn_command(settings)
    finally:
        del os.environ["MYSQL_ROOT_PASSWORD"]
    given = {name for name, value in TEST_SECRETS.items() if value in env.values()}
    assert given == {"api_db_password", "replica_password"}, given


def test_metrics_from_another_host_need_the_metrics_scope(
    healthy_cluster: LocalCluster, settings: Settings, api_key: str
):
    import uuid

    from tests.support import make_key

    metrics_key = make_key(settings, f"prom-{uuid.uuid4().hex[:8]}", ("metrics",))

    # a Prometheus network of its own (Compose) may read without a key
    allowing = settings.model_copy(update={"metrics_allow_from": "127.0.0.0/8,198.51.100.0/24"})

    async def scenario() -> list[int]:
        app = create_app(allowing, workers=1)
        async with app.router.lifespan_context(app):
            codes = []
            for client, key in (
                (("127.0.0.1", 5000), None),
                (("198.51.100.7", 5000), None),
                (("203.0.113.5", 5000), None),
                (("203.0.113.5", 5000), api_key),
                (("203.0.113.5", 5000), metrics_key),
            ):
                transport = httpx.ASGITransport(app=app, client=client)
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                    headers = {"X-API-Key": key} if key else {}
                    codes.append((await http.get("/metrics", headers=headers)).status_code)
            return codes

    assert asyncio.run(scenario()) == [200, 200, 401, 403, 200]


def test_revoke_by_a_name_that_is_another_keys_prefix_is_refused(
    healthy_cluster: LocalCluster, settings: Settings
):
    import uuid

    import sqlalchemy as sa

    from ledgerguard.apikeys import ApiKeyError, prefix_of
    from ledgerguard.db.api_keys import create_api_key, revoke_api_key
    from ledgerguard.db.engines import migration_url

    engine = sa.create_engine(migration_url(settings))
    try:
        with engine.begin() as conn:
            _, first = create_api_key(conn, name=f"k-{uuid.uuid4().hex[:8]}", scopes=("metrics",))
            prefix = prefix_of(first)
            create_api_key(conn, name=prefix, scopes=("metrics",))  # a name equal to that prefix
        with engine.begin() as conn, pytest.raises(ApiKeyError, match="ambiguous"):
            revoke_api_key(conn, name_or_prefix=prefix)
    finally:
        engine.dispose()


def test_revoked_key_stops_within_the_cache_time_while_the_primary_is_unreachable(
    healthy_cluster: LocalCluster, settings: Settings
):
    import uuid

    import sqlalchemy as sa

    from ledgerguard.apikeys import prefix_of
    from ledgerguard.db.api_keys import revoke_api_key
    from ledgerguard.db.engines import migration_url, primary_engine, replica_engine
    from tests.support import free_ports, make_key

    name = f"revoked-{uuid.uuid4().hex[:8]}"
    prefix = prefix_of(make_key(settings, name, ("transactions:read",)))
    (dead_port,) = free_ports(1)
    dead = settings.model_copy(update={"primary_port": dead_port})

    async def scenario() -> tuple[bool, bool]:
        live, unreachable = primary_engine(settings), primary_engine(dead, node="primary")
        replica = replica_engine(settings)
        engines = {"primary": live}
        cache = KeyCache(lambda: engines["primary"], replica=lambda: replica, ttl=0.2)
        try:
            before = await cache.get(prefix)
            sync = sa.create_engine(migration_url(settings))
            with sync.begin() as conn:
                revoke_api_key(conn, name_or_prefix=name)
            sync.dispose()
            healthy_cluster.wait_for_replica(timeout=30)
            engines["primary"] = unreachable  # the primary is away now
            await asyncio.sleep(0.3)  # past the cache time
            after = await cache.get(prefix)
            return before.active, after.active
        finally:
            for engine in (live, unreachable, replica):
                await engine.dispose()

    assert asyncio.run(scenario()) == (True, False)


def test_web_login_attempts_are_counted_across_workers(
    healthy_cluster: LocalCluster, settings: Settings, tmp_path
):
    """Two workers (two apps with their lifespans, one state directory): one address's login
    budget is shared, so a second worker cannot grant it again."""
    tight = settings.model_copy(update={"web_login_attempts_per_minute": 2})

    async def scenario() -> list[float]:
        first, second = create_app(tight, workers=2), create_app(tight, workers=2)
        async with first.router.lifespan_context(first), second.router.lifespan_context(second):
            return [
                first.state.login_throttle.wait("192.0.2.9"),
                second.state.login_throttle.wait("192.0.2.9"),
                first.state.login_throttle.wait("192.0.2.9"),
                second.state.login_throttle.wait("192.0.2.9"),
            ]

    waits = asyncio.run(scenario())
    assert waits[:2] == [0, 0] and all(wait > 0 for wait in waits[2:]), waits
