"""CPU and queries of one worker's key-cache refresh: every cached key expired, then each asked once.

What `KeyCache` costs a worker every `ttl` (5 s) when its clients use `--keys` keys: all entries
are aged past the cache time (as 5 s of traffic would), then every key is asked for once, as the
next requests would. CPU time (`process_time`) and the `api_keys` statements sent are summed
over `--rounds` such refreshes. The cluster and keys are the ones `api_inprocess_cpu.py` uses
(`ledgerguard cluster up`, `<state dir>/bench-api-keys`); another version of the code on the same
venv and cluster (its entries are `(time, record)` too):

    .venv/bin/python benchmarks/key_cache_refresh_cpu.py > after.json
    PYTHONPATH=<other worktree>/src .venv/bin/python benchmarks/key_cache_refresh_cpu.py

JSON on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any


async def run(keys: list[str], rounds: int) -> dict[str, Any]:
    import sqlalchemy as sa

    from ledgerguard.api.services import KeyCache
    from ledgerguard.apikeys import prefix_of
    from ledgerguard.db.engines import primary_engine, replica_engine
    from ledgerguard.settings import Settings

    settings = Settings()
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
    return {
        "benchmark": "key cache: CPU and queries of one refresh of every cached key",
        "keys": len(prefixes),
        "rounds": rounds,
        "cpu_ms_per_refresh": round(1e3 * cpu / rounds, 2),
        "queries_per_refresh": statements / rounds,
        "loadavg": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=50, help="cached keys (bench keys used)")
    parser.add_argument("--rounds", type=int, default=100, help="refreshes measured")
    parser.add_argument("--key-file", help="API keys, one a line (default: the bench's keys)")
    args = parser.parse_args()
    from ledgerguard.settings import Settings

    key_file = args.key_file or Settings().state_dir / "bench-api-keys"
    keys = [line.strip() for line in open(key_file) if line.strip()][: args.keys]  # noqa: SIM115
    import uvloop

    report = uvloop.run(run(keys, args.rounds))
    json.dump(report, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
