"""Benchmark of the nightly analysis: load N synthetic rows, time `analyze_interval`.

The analysis runs in a fresh child process so its peak RSS is its own, not the generator's or
the importer's. Loading is idempotent (same seed and size: same external ids, skipped on the
second run), so a benchmark can be repeated against the same cluster.

The target of the original design: 13.4M transactions in <= 3 minutes with <= 2 GiB peak RSS
on a 2-core machine.
"""

from __future__ import annotations

import multiprocessing
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ledgerguard.fraud.synthetic import config_for_rows, generate, write_dataset
from ledgerguard.settings import Settings

#: Ids far from the ones tests and demos use.
BENCH_USER_OFFSET = 7_000_000_000
BENCH_TERMINAL_OFFSET = 7_000_000_000


def _analyse_in_child(settings: Settings, start: datetime, end: datetime) -> dict[str, Any]:
    from ledgerguard.fraud.pipeline import analyze_interval

    began = time.perf_counter()
    result = analyze_interval(settings, start=start, end=end)
    seconds = time.perf_counter() - began
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return result.to_dict() | {"wall_seconds": seconds, "peak_rss_mib": peak_kib / 1024}


def bench_analysis(
    settings: Settings, rows: int, *, seed: int = 7, days: int = 60, wait_for_replica: bool = True
) -> dict[str, Any]:
    """Load about `rows` synthetic transactions (if not yet loaded) and time one analysis.

    The analysed interval is every day after the first 30 (the lookback of the trailing
    windows), so the run reads all `rows` rows and scores about half of them. Returns a
    JSON-able dict: rows, import and analysis seconds, rows/s, peak RSS in MiB.
    """
    from ledgerguard.fraud.imports import import_labels, import_transactions

    config = config_for_rows(
        rows,
        seed=seed,
        days=days,
        user_id_offset=BENCH_USER_OFFSET,
        terminal_id_offset=BENCH_TERMINAL_OFFSET,
        external_prefix=f"bench{seed}-{rows}-",
    )
    began = time.perf_counter()
    data = generate(config)
    generate_seconds = time.perf_counter() - began
    with tempfile.TemporaryDirectory(prefix="ledgerguard-bench-") as directory:
        tx_path, labels_path = write_dataset(data, Path(directory), name="bench")
        imported = import_transactions(settings, tx_path)
        labelled = import_labels(settings, labels_path, source="bench")
    if wait_for_replica:
        from ledgerguard.cluster.local import LocalCluster

        LocalCluster(settings).wait_for_replica(timeout=600)

    first = datetime.combine(config.start, datetime.min.time(), UTC)
    start, end = first + timedelta(days=30), first + timedelta(days=config.days + 1)
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        analysis = pool.apply(_analyse_in_child, (settings, start, end))
    return {
        "rows": len(data.transactions),
        "generate_seconds": round(generate_seconds, 2),
        "import_seconds": imported.seconds,
        "import_rows_per_second": round(imported.rows_per_second),
        "import_inserted": imported.inserted,
        "labels_seconds": labelled.seconds,
        "analysis_seconds": round(analysis["wall_seconds"], 2),
        "analysis_rows_read": analysis["rows_read"],
        "analysis_rows_per_second": round(analysis["rows_read"] / analysis["wall_seconds"]),
        "analysed": analysis["analysed"],
        "flagged": analysis["flagged"],
        "pages": analysis["pages"],
        "peak_rss_mib": round(analysis["peak_rss_mib"], 1),
        "counts_by_rule": analysis["counts_by_rule"],
    }
