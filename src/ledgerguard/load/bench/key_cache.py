"""`ledgerguard bench key-cache-refresh`: CPU and queries of one worker's key-cache refresh.

What `KeyCache` costs a worker every `ttl` (5 s) when its clients use `keys` keys: all entries
are aged past the cache time (as 5 s of traffic would), then every key is asked for once, as the
next requests would. CPU time (`process_time`) and the `api_keys` statements sent are summed
over `rounds` such refreshes. The keys are those of `bench api-cpu` (`<state dir>/bench-api-keys`,
made if missing). Another version of the code on the same venv and cluster (its entries are
`(time, record)` too): `PYTHONPATH=<other worktree>/src ledgerguard bench key-cache-refresh`.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledgerguard.load.bench.api_cpu import bench_key_list
from ledgerguard.load.bench.servers import Progress, running_cluster
from ledgerguard.load.runner import new_event_loop
from ledgerguard.settings import Settings


@dataclass(frozen=True)
class KeyCacheOptions:
    keys: int = 50
    rounds: int = 100
    #: API keys, one a line (None: the bench's keys)
    key_file: Path | None = None


def run_key_cache_refresh(
    settings: Settings, options: KeyCacheOptions, *, progress: Progress
) -> dict[str, Any]:
    """The measurement (see the module docstring); the report."""
    cluster, started_cluster = running_cluster(settings, progress)
    try:
        keys = bench_key_list(settings, options.key_file, options.keys)[: options.keys]
        progress(f"{options.rounds} refreshes of {len(keys)} cached keys")
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            cpu, statements = runner.run(_measure(settings, keys, options.rounds))
    finally:
        if started_cluster:
            cluster.down(progress=progress)
    return {
        "benchmark": "key cache: CPU and queries of one refresh of every cached key",
        "keys": len(keys),
        "rounds": options.rounds,
        "cpu_ms_per_refresh": round(1e3 * cpu / options.rounds, 2),
        "queries_per_refresh": statements / options.rounds,
        "loadavg": os.getloadavg(),
    }


async def _measure(settings: Settings, keys: tuple[str, ...], rounds: int) -> tuple[float, int]:
    """CPU seconds and `api_keys` statements of `rounds` refreshes, after a warm-up."""
    import sqlalchemy as sa

    from ledgerguard.api.services import KeyCache
    from ledgerguard.apikeys import prefix_of
    from ledgerguard.db.engines import primary_engine, replica_engine

    primary, replica = primary_engine(settings), replica_engine(settings)
    statements = 0

    def count(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        nonlocal statements
        statements += "api_keys" in statement

    sa.event.listen(primary.sync_engine, "before_cursor_execute", count)
    cache = KeyCache(lambda: primary, replica=lambda: replica)
    prefixes = [prefix_of(key) for key in keys]
    try:
        for prefix in prefixes:  # warm-up: connections, statement cache, every key cached
            await cache.get(prefix)
        statements, cpu = 0, 0.0
        for _ in range(rounds):
            # what `ttl` seconds of traffic do to the entries (the cache has no clock to move)
            expired = time.monotonic() - cache.ttl - 1
            for prefix, (_, record) in list(cache._entries.items()):
                cache._entries[prefix] = (expired, record)
            started = time.process_time()
            for prefix in prefixes:
                await cache.get(prefix)
            cpu += time.process_time() - started
    finally:
        await primary.dispose()
        await replica.dispose()
    return cpu, statements
