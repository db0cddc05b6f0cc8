"""RSS after every stage of one `analyze_interval` run on a `bench analysis` data set.

Run it from the directory whose `.env` points at the benchmark cluster:

    .venv/bin/python benchmarks/analysis_rss_probe.py --rows 2000000 [--days 5]

Prints one line per stage (terminal history, each page read, scored, upserted) with the current
RSS and the peak so far (`ru_maxrss`), so a peak that grows with the interval shows where it
grows. The stages are wrapped, not changed: the verdicts and reports are those of a normal run.
"""

from __future__ import annotations

import argparse
import resource
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from ledgerguard.fraud import pipeline, reader
from ledgerguard.fraud.synthetic import config_for_rows
from ledgerguard.load.bench.analysis import BENCH_TERMINAL_OFFSET, BENCH_USER_OFFSET
from ledgerguard.settings import Settings

_BEGAN = time.perf_counter()


def _log(message: str) -> None:
    with open("/proc/self/statm") as statm:
        rss_mib = int(statm.read().split()[1]) * resource.getpagesize() / 2**20
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    elapsed = time.perf_counter() - _BEGAN
    print(
        f"{elapsed:7.2f} s  rss {rss_mib:7.1f} MiB  peak {peak_mib:7.1f} MiB  {message}", flush=True
    )


def _wrap(owner: Any, name: str, describe: Any) -> None:
    original = getattr(owner, name)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        _log(describe(result, kwargs))
        return result

    setattr(owner, name, wrapped)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="the bench data set's size")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=float, help="analyse only this many days (default: all)")
    options = parser.parse_args()
    config = config_for_rows(
        options.rows,
        seed=options.seed,
        days=60,
        user_id_offset=BENCH_USER_OFFSET,
        terminal_id_offset=BENCH_TERMINAL_OFFSET,
        external_prefix=f"bench{options.seed}-{options.rows}-",
    )
    first = datetime.combine(config.start, datetime.min.time(), UTC)
    start, end = first + timedelta(days=30), first + timedelta(days=config.days + 1)
    if options.days:
        end = start + timedelta(days=options.days)

    _wrap(reader.ReplicaReader, "page", lambda f, kw: f"page {kw['users']}: {len(f):,} rows")
    _wrap(reader.ReplicaReader, "terminal_days", lambda d, kw: f"terminal days: {len(d):,}")
    _wrap(pipeline, "score_frame", lambda v, kw: f"scored, {len(v.rows):,} rows to store")
    _wrap(pipeline, "upsert_scores", lambda n, kw: f"upserted {n:,}")
    _log(f"analysing [{start.isoformat()}, {end.isoformat()})")
    result = pipeline.analyze_interval(Settings(), start=start, end=end)
    _log(f"done: {result.to_dict()}")


if __name__ == "__main__":
    main()
