"""RSS and time of every stage of one `analyze_interval` run on a `bench analysis` data set.

Run it from the directory whose `.env` points at the benchmark cluster:

    .venv/bin/python benchmarks/analysis_rss_probe.py --rows 2000000 [--days 5] [--quiet]

Prints one line per stage (terminal history, each page read, scored, upserted) with the current
RSS and the peak so far (`ru_maxrss`), so a peak that grows with the interval shows where it
grows; at the end, the seconds spent in each stage over the whole run (`--quiet`: only those).
Page reads run in the read-ahead thread and pages are scored on the page threads, overlapping
each other: the seconds of a stage are summed over its threads (named after the stage), so
they add up to more than the wall time. The stages are wrapped, not changed: the verdicts and reports are those of
a normal run.
"""

from __future__ import annotations

import argparse
import os
import resource
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from ledgerguard.fraud import pipeline, reader
from ledgerguard.fraud.engine import (
    features,
    model,
    scoring,
    terminal_days,
    terminal_features,
)
from ledgerguard.fraud.synthetic import config_for_rows
from ledgerguard.load.bench.analysis import BENCH_TERMINAL_OFFSET, BENCH_USER_OFFSET
from ledgerguard.settings import Settings

_BEGAN = time.perf_counter()
#: stage -> [calls, seconds] (summed over the run)
_TIMES: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
_QUIET = False


def _log(message: str) -> None:
    if _QUIET:
        return
    with open("/proc/self/statm") as statm:
        rss_mib = int(statm.read().split()[1]) * resource.getpagesize() / 2**20
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    elapsed = time.perf_counter() - _BEGAN
    print(
        f"{elapsed:7.2f} s  rss {rss_mib:7.1f} MiB  peak {peak_mib:7.1f} MiB  {message}", flush=True
    )


def _wrap(owner: Any, name: str, describe: Any = None) -> None:
    """Time every call of `owner.name` (and log it when `describe` words its result)."""
    original = getattr(owner, name)
    stage = f"{getattr(owner, '__name__', owner)}.{name}"

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        result = original(*args, **kwargs)
        thread = threading.current_thread()
        # the read-ahead thread, or one of the page threads (`page_threads`): summed over them
        where = "" if thread is threading.main_thread() else f" [{thread.name.split('_')[0]}]"
        times = _TIMES[stage + where]
        times[0] += 1
        times[1] += time.perf_counter() - began
        if describe is not None:
            _log(describe(result, kwargs))
        return result

    setattr(owner, name, wrapped)


def main() -> None:
    global _QUIET
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="the bench data set's size")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=float, help="analyse only this many days (default: all)")
    parser.add_argument("--quiet", action="store_true", help="only the seconds per stage")
    options = parser.parse_args()
    _QUIET = options.quiet
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
    _wrap(
        reader.ReplicaReader,
        "terminal_tables",
        lambda tables, kw: (
            f"terminal days: {len(tables[0]):,}, fraud customers: {len(tables[1]):,}"
        ),
    )
    _wrap(reader.ReplicaReader, "stored_ids")
    _wrap(pipeline, "replica_terminal_history")
    _wrap(pipeline, "fill_missing_usd")
    _wrap(pipeline, "score_frame", lambda v, kw: f"scored, {len(v.rows):,} rows to store")
    _wrap(scoring, "sort_frame")
    _wrap(features, "customer_features")
    _wrap(terminal_days, "customer_features")  # the profile pass, when it is on
    _wrap(features, "terminal_features")
    _wrap(terminal_features, "_terminal_recency")
    _wrap(model.FraudModel, "probability")
    _wrap(scoring, "_words")
    _wrap(pipeline, "upsert_scores", lambda n, kw: f"upserted {n:,}")
    _wrap(pipeline, "merge_reports")
    _log(f"analysing [{start.isoformat()}, {end.isoformat()})")
    load_before, cpu_before = os.getloadavg(), os.times()
    began = time.perf_counter()
    result = pipeline.analyze_interval(Settings(), start=start, end=end)
    _QUIET = False
    _log(f"done: {result.to_dict()}")
    print(f"{'stage':<48} {'calls':>6} {'seconds':>8}")
    for stage, (calls, seconds) in sorted(_TIMES.items(), key=lambda item: -item[1][1]):
        print(f"{stage:<48} {calls:>6.0f} {seconds:>8.2f}")
    print(f"{'analyze_interval (wall)':<48} {1:>6} {time.perf_counter() - began:>8.2f}")
    cpu = os.times()
    used = cpu.user + cpu.system - cpu_before.user - cpu_before.system
    print(f"{'analyze_interval (CPU of this process)':<48} {1:>6} {used:>8.2f}")
    print(f"load average before {load_before}, after {os.getloadavg()}")


if __name__ == "__main__":
    main()
