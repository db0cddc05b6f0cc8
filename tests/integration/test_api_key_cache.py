"""The API's key cache (`KeyCache`) on the session cluster: what it asks the servers, and when.

Statements are counted on the real engines with a SQLAlchemy event listener, so "one query for
many keys" and "no query at all" are what the servers were sent, not what the cache believes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ledgerguard.api.services import KeyCache
from ledgerguard.apikeys import prefix_of
from ledgerguard.cluster.local import LocalCluster
from ledgerguard.db.api_keys import create_api_key, revoke_api_key
from ledgerguard.db.engines import migration_engine, primary_engine, replica_engine
from ledgerguard.settings import Settings
from tests.support import free_ports


def _new_prefixes(settings: Settings, count: int) -> list[str]:
    """`count` new write keys, created in one transaction; their prefixes."""
    tag = uuid.uuid4().hex[:8]
    engine = migration_engine(settings)
    try:
        with engine.begin() as conn:
            plains = [
                create_api_key(conn, name=f"cache-{tag}-{n}", scopes=("transactions:write",))[1]
                for n in range(count)
            ]
    finally:
        engine.dispose()
    return [prefix_of(plain) for plain in plains]  # type: ignore[misc]


def _revoke(settings: Settings, prefix: str) -> None:
    engine = migration_engine(settings)
    try:
        with engine.begin() as conn:
            revoke_api_key(conn, name_or_prefix=prefix)
    finally:
        engine.dispose()


@contextmanager
def _statements(engine: AsyncEngine) -> Iterator[list[tuple[str, Any]]]:
    """Every statement on `api_keys` the engine sends while the block runs (SQL, parameters)."""
    sent: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "api_keys" in statement:
            sent.append((statement, parameters))

    sa.event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", record)


def _with_cache(
    settings: Settings, scenario: Callable[[KeyCache, AsyncEngine], Awaitable[Any]], **options: Any
) -> Any:
    """Run `scenario(cache, primary)` with a cache on the session cluster's two servers."""

    async def main() -> Any:
        primary, replica = primary_engine(settings), replica_engine(settings)
        cache = KeyCache(lambda: primary, replica=lambda: replica, **options)
        try:
            return await scenario(cache, primary)
        finally:
            await primary.dispose()
            await replica.dispose()

    return asyncio.run(main())


def test_expired_keys_are_refreshed_together_in_one_query(
    healthy_cluster: LocalCluster, settings: Settings
):
    prefixes = _new_prefixes(settings, 30)

    async def scenario(cache: KeyCache, primary: AsyncEngine) -> None:
        with _statements(primary) as sent:
            first = await asyncio.gather(*(cache.get(prefix) for prefix in prefixes))
            assert all(record is not None and record.active for record in first)
            assert len(sent) == len(prefixes)  # first sight: one lookup each
            await asyncio.sleep(2.1)  # past the cache time of every entry
            sent.clear()
            for prefix in prefixes:
                assert (await cache.get(prefix)).active  # type: ignore[union-attr]
            assert len(sent) == 1, sent  # the first expiry refreshed them all
            ((statement, parameters),) = sent
            assert " IN " in statement.upper()
            assert set(prefixes) <= set(parameters), parameters

    _with_cache(settings, scenario, ttl=2.0)


def test_a_refresh_takes_only_keys_due_and_at_most_a_batch(
    healthy_cluster: LocalCluster, settings: Settings
):
    prefixes = _new_prefixes(settings, 6)

    async def scenario(cache: KeyCache, primary: AsyncEngine) -> None:
        for prefix in prefixes[:3]:
            await cache.get(prefix)
        await asyncio.sleep(1.6)  # the first three are past half the cache time
        for prefix in prefixes[3:]:
            await cache.get(prefix)
        await asyncio.sleep(0.65)  # the first three expired, the last three not yet due
        with _statements(primary) as sent:
            await cache.get(prefixes[0])
            assert len(sent) == 1
            asked = set(sent[0][1])
            assert asked == set(prefixes[:2]), asked  # batch of two: the asked key and one due
            for prefix in prefixes[1:2] + prefixes[3:]:
                await cache.get(prefix)  # refreshed or still fresh: no query
            assert len(sent) == 1, sent

    _with_cache(settings, scenario, ttl=2.0, batch_size=2)


def test_a_revocation_takes_effect_within_the_cache_time_through_a_batched_refresh(
    healthy_cluster: LocalCluster, settings: Settings
):
    """The revoked key is not asked for itself: another key's expiry refreshes it too."""
    used, revoked = _new_prefixes(settings, 2)

    async def scenario(cache: KeyCache, primary: AsyncEngine) -> tuple[bool, bool, int]:
        before = await cache.get(revoked)
        await cache.get(used)
        _revoke(settings, revoked)
        await asyncio.sleep(0.5)  # past the cache time
        with _statements(primary) as sent:
            await cache.get(used)  # refreshes both
            after = await cache.get(revoked)
        return before.active, after.active, len(sent)  # type: ignore[union-attr]

    assert _with_cache(settings, scenario, ttl=0.4) == (True, False, 1)


def test_unknown_prefixes_are_cached_and_not_refreshed_with_the_known_keys(
    healthy_cluster: LocalCluster, settings: Settings
):
    (known,) = _new_prefixes(settings, 1)
    unknown = uuid.uuid4().hex[:12]

    async def scenario(cache: KeyCache, primary: AsyncEngine) -> None:
        with _statements(primary) as sent:
            assert await cache.get(unknown) is None
            assert await cache.get(unknown) is None  # cached: no second query
            await cache.get(known)
            assert len(sent) == 2
            await asyncio.sleep(0.5)
            sent.clear()
            await cache.get(known)
            assert [set(parameters) for _, parameters in sent] == [{known}]
            assert await cache.get(unknown) is None  # asked again: looked up again
            assert [set(parameters) for _, parameters in sent] == [{known}, {unknown}]

    _with_cache(settings, scenario, ttl=0.4)


def test_concurrent_requests_for_one_prefix_share_one_lookup(
    healthy_cluster: LocalCluster, settings: Settings
):
    first, second = _new_prefixes(settings, 2)
    unknown = uuid.uuid4().hex[:12]

    async def scenario(cache: KeyCache, primary: AsyncEngine) -> None:
        with _statements(primary) as sent:
            answers = await asyncio.gather(*(cache.get(p) for p in [first, unknown] * 20))
            assert len(sent) == 2, sent  # one per prefix, not one per request
            assert {a.prefix if a else None for a in answers} == {first, None}
            await cache.get(second)
            await asyncio.sleep(0.5)
            sent.clear()
            # both expired: the first request's batch covers the other prefix's requests too
            answers = await asyncio.gather(*(cache.get(p) for p in [first, second] * 20))
            assert len(sent) == 1, sent
            assert all(a is not None and a.active for a in answers)

    _with_cache(settings, scenario, ttl=0.4)


def test_the_last_answer_stands_when_no_server_answers(
    healthy_cluster: LocalCluster, settings: Settings
):
    (known,) = _new_prefixes(settings, 1)
    dead_primary, dead_replica = free_ports(2)
    dead = settings.model_copy(update={"primary_port": dead_primary, "replica_port": dead_replica})

    async def scenario() -> None:
        live = {"primary": primary_engine(settings), "replica": replica_engine(settings)}
        gone = {
            "primary": primary_engine(dead, node="primary"),
            "replica": replica_engine(dead, node="replica"),
        }
        engines = dict(live)
        cache = KeyCache(lambda: engines["primary"], replica=lambda: engines["replica"], ttl=0.2)
        try:
            assert (await cache.get(known)).active  # type: ignore[union-attr]
            engines.update(gone)  # neither server answers now
            await asyncio.sleep(0.3)
            assert (await cache.get(known)).active  # type: ignore[union-attr]
            with pytest.raises((OSError, sa.exc.SQLAlchemyError)):
                await cache.get(uuid.uuid4().hex[:12])  # not cached: nothing to stand
        finally:
            for engine in (*live.values(), *gone.values()):
                await engine.dispose()

    asyncio.run(scenario())


def test_key_cache_evicts_least_recently_used_not_everything(
    healthy_cluster: LocalCluster, settings: Settings
):
    names = {name: uuid.uuid4().hex[:12] for name in ("valid", "b", "c", "d")}

    async def scenario(cache: KeyCache, primary: AsyncEngine) -> list[str]:
        for name in ("valid", "b", "c"):
            await cache.get(names[name])
        await cache.get(names["valid"])  # used again: most recent
        await cache.get(names["d"])  # evicts "b", the least recently used
        by_prefix = {prefix: name for name, prefix in names.items()}
        return [by_prefix[prefix] for prefix in cache._entries]

    assert _with_cache(settings, scenario, max_entries=3) == ["c", "valid", "d"]
