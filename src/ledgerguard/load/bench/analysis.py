"""Benchmark of the nightly analysis: load N synthetic rows, time `analyze_interval`.

The analysis runs in a fresh child process so its peak RSS is its own, not the generator's or
the importer's. Loading is idempotent (same seed and size: same external ids), so a benchmark can
be repeated against the same cluster; when the data set is already there (both imports are all
or nothing, so one stored row of each means all of them) generating and importing it again is
skipped: at 13.4M rows that is minutes of work that would change nothing.

The target of the original design: 13.4M transactions in <= 3 minutes with <= 2 GiB peak RSS
on a 2-core machine.
"""

from __future__ import annotations

import multiprocessing
import resource
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ledgerguard.fraud.model_store import promoted
from ledgerguard.fraud.synthetic import config_for_rows, generate
from ledgerguard.fraud.synthetic_files import write_dataset
from ledgerguard.settings import Settings

#: `progress(stage, done, total)`: what is being done, how far (total None: no measure).
StageProgress = Callable[[str, int, int | None], None]

#: Ids far from the ones tests and demos use.
BENCH_USER_OFFSET = 7_000_000_000
BENCH_TERMINAL_OFFSET = 7_000_000_000


def _quiet(stage: str, done: int, total: int | None) -> None:
    """Default progress sink."""


def _analyse_in_child(settings: Settings, start: datetime, end: datetime) -> dict[str, Any]:
    from ledgerguard.fraud.pipeline import analyze_interval

    began = time.perf_counter()
    result = analyze_interval(settings, start=start, end=end)
    seconds = time.perf_counter() - began
    return result.to_dict() | {"wall_seconds": seconds, "peak_rss_mib": _peak_rss_kib() / 1024}


def _peak_rss_kib() -> int:
    """This process's own peak RSS: `VmHWM` of its address space.

    Not `ru_maxrss`: Linux carries it across fork and exec, so a "spawn" child reports at least
    the parent's RSS at the time it was started (the generator's and importer's frames: 2.4 GiB
    at 2M rows, 15 GiB at 13.4M), not its own. `VmHWM` starts afresh with the exec'd image.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def loaded_rows(settings: Settings, external_prefix: str) -> int | None:
    """Transactions of the data set `external_prefix` when it and its labels are stored.

    None when either import has not happened yet. Counting the transactions is a range scan of
    the unique index on `external_id` (seconds at 13.4M rows).
    """
    from ledgerguard.db.engines import writer_engine
    from ledgerguard.db.tables import fraud_labels, transactions

    count = sa.select(sa.func.count()).where(
        transactions.c.external_id.startswith(external_prefix, autoescape=True)
    )
    labelled = (
        sa.select(fraud_labels.c.transaction_id)
        .where(fraud_labels.c.external_id.startswith(external_prefix, autoescape=True))
        .limit(1)
    )
    engine = writer_engine(settings)
    try:
        with engine.connect() as conn:
            stored = int(conn.execute(count).scalar_one())
            if not stored or conn.execute(labelled).first() is None:
                return None
    finally:
        engine.dispose()
    return stored


def ensure_dataset(
    settings: Settings,
    rows: int,
    *,
    seed: int = 7,
    days: int = 60,
    start: date = date(2025, 1, 1),
    progress: StageProgress = _quiet,
) -> tuple[Any, dict[str, Any]]:
    """The benchmark data set of `rows` synthetic transactions, loaded unless already stored.

    Returns its generator config and what loading it took (`load_skipped` when it was there).
    Each stage (generating, writing the files, the two imports) reports to `progress`: at
    13.4M rows they take minutes.
    """
    from ledgerguard.fraud.imports.importer import import_labels, import_transactions

    config = config_for_rows(
        rows,
        seed=seed,
        days=days,
        start=start,
        user_id_offset=BENCH_USER_OFFSET,
        terminal_id_offset=BENCH_TERMINAL_OFFSET,
        external_prefix=f"bench{seed}-{rows}-{start.isoformat()}-",
    )
    stored = loaded_rows(settings, config.external_prefix)
    if stored is not None:
        load: dict[str, Any] = {"rows": stored, "load_skipped": True}
    else:
        began = time.perf_counter()

        def stage(name: str) -> Callable[[int, int], None]:
            progress(name, 0, None)  # shown at once, before the stage's first step
            return lambda done, total: progress(name, done, total)

        data = generate(config, progress=stage(f"generating {rows:,} synthetic transactions"))
        generate_seconds = time.perf_counter() - began
        with tempfile.TemporaryDirectory(prefix="ledgerguard-bench-") as directory:
            tx_path, labels_path = write_dataset(
                data, Path(directory), name="bench", progress=stage("writing the CSV files")
            )
            del data  # the generator's frames are not needed while importing
            imported = import_transactions(
                settings, tx_path, progress=stage("importing the transactions")
            )
            labelled = import_labels(
                settings, labels_path, source="bench", progress=stage("importing the labels")
            )
        load = {
            "rows": imported.rows,
            "generate_seconds": round(generate_seconds, 2),
            "import_seconds": imported.seconds,
            "import_rows_per_second": round(imported.rows_per_second),
            "import_inserted": imported.inserted,
            "labels_seconds": labelled.seconds,
            "load_skipped": False,
        }
    return config, load


def bench_analysis(
    settings: Settings,
    rows: int,
    *,
    seed: int = 7,
    days: int = 60,
    start: date = date(2025, 1, 1),
    wait_for_replica: bool = True,
    history_days: int = 30,
    progress: StageProgress = _quiet,
) -> dict[str, Any]:
    """Load about `rows` synthetic transactions (unless already stored) and time one analysis.

    The analysed interval is every day after the first `history_days` (by default the 30 days
    of lookback of the trailing windows), so the run reads all `rows` rows and scores about
    half of them; with `history_days=0` it scores every one. Returns a
    JSON-able dict: rows, import and analysis seconds, rows/s, peak RSS in MiB; with
    `load_skipped` true (and no import figures) when the data set was already stored.
    """
    config, load = ensure_dataset(
        settings, rows, seed=seed, days=days, start=start, progress=progress
    )
    if wait_for_replica:
        from ledgerguard.cluster.local import LocalCluster

        progress("waiting for the replica to apply the data set", 0, None)
        LocalCluster(settings).wait_for_replica(timeout=600)

    first = datetime.combine(config.start, datetime.min.time(), UTC)
    start, end = first + timedelta(days=history_days), first + timedelta(days=config.days + 1)
    progress("analysing (a child process, no finer progress)", 0, None)
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        analysis = pool.apply(_analyse_in_child, (settings, start, end))
    return load | {
        "analysed_interval": [start.isoformat(), end.isoformat()],
        "analysis_seconds": round(analysis["wall_seconds"], 2),
        "analysis_rows_read": analysis["rows_read"],
        "analysis_rows_per_second": round(analysis["rows_read"] / analysis["wall_seconds"]),
        "analysed": analysis["analysed"],
        "flagged": analysis["flagged"],
        # verdict rows written to `fraud_scores` (flagged, a rule fired, at `store_min_score`)
        "stored": analysis["stored"],
        "pages": analysis["pages"],
        "peak_rss_mib": round(analysis["peak_rss_mib"], 1),
        "counts_by_rule": analysis["counts_by_rule"],
        # the model that scored (the store's promoted version; None: the rules alone)
        "model_version": promoted(settings.fraud.model_store_dir)
        if settings.fraud.model_path is None
        else str(settings.fraud.model_path),
    }
