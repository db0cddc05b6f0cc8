"""How the alert queue's keyset pages behave at a million alerts (`ledgerguard bench review-queue`).

Synthetic flagged verdicts are stored once in `fraud_scores` under transaction ids far above
real ones (`BENCH_TX_OFFSET`, rule `bench_queue`), then the queue's own statement
(`ledgerguard.db.alert_queue.queue_page`) is timed on the replica: the first page and pages deep in the
queue, by score and by time, with and without filters. A keyset page costs the same at any
depth; an OFFSET page would grow with it.
"""

from __future__ import annotations

import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from ledgerguard.db.alert_queue import QueueFilter, queue_page
from ledgerguard.db.engines import analytics_engine, migration_engine
from ledgerguard.db.fraud_results import UPSERT_SCORES
from ledgerguard.db.tables import fraud_scores
from ledgerguard.settings import Settings

BENCH_TX_OFFSET = 9_000_000_000_000
BENCH_RULE = "bench_queue"
BATCH = 10_000
START = datetime(2024, 1, 1, tzinfo=UTC)


def _stored(conn: sa.Connection) -> int:
    return int(
        conn.execute(
            sa.select(sa.func.count()).where(fraud_scores.c.transaction_id >= BENCH_TX_OFFSET)
        ).scalar()
        or 0
    )


def load_alerts(settings: Settings, alerts: int, *, seed: int = 11) -> dict[str, Any]:
    """Store `alerts` flagged verdicts unless that many are there already."""
    engine = migration_engine(settings)
    rng = random.Random(seed)
    try:
        with engine.connect() as conn:
            if _stored(conn) >= alerts:
                return {"load_skipped": True}
        began = time.perf_counter()
        for offset in range(0, alerts, BATCH):
            rows = []
            for i in range(offset, min(alerts, offset + BATCH)):
                occurred = START + timedelta(seconds=i * 30)
                rows.append(
                    {
                        "transaction_id": BENCH_TX_OFFSET + i,
                        "user_id": rng.randrange(1, 100_000),
                        "occurred_at": occurred,
                        "amount": Decimal("15000"),
                        "currency": "USD",
                        "amount_usd": Decimal("15000"),
                        "score": Decimal(rng.randrange(5000, 10000)) / 10000,
                        "flagged": True,
                        "rule_ids": BENCH_RULE if i % 4 else f"large_amount,{BENCH_RULE}",
                        "reasons": "synthetic alert of the queue benchmark",
                        "interval_start": occurred.replace(hour=0, minute=0, second=0),
                        "interval_end": occurred.replace(hour=0, minute=0, second=0)
                        + timedelta(days=1),
                        "analysed_at": occurred,
                    }
                )
            with engine.begin() as conn:
                conn.execute(UPSERT_SCORES, rows)
        return {"load_skipped": False, "load_seconds": round(time.perf_counter() - began, 1)}
    finally:
        engine.dispose()


def remove_alerts(settings: Settings) -> int:
    """Delete the benchmark's alerts (the DDL account may; the API account may not)."""
    engine = migration_engine(settings)
    try:
        with engine.begin() as conn:
            return conn.execute(
                sa.delete(fraud_scores).where(fraud_scores.c.transaction_id >= BENCH_TX_OFFSET)
            ).rowcount
    finally:
        engine.dispose()


def _deep_cursor(conn: sa.Connection, flt: QueueFilter, depth: int) -> str | None:
    """The cursor that starts a page `depth` alerts into the queue (found once, not timed)."""
    key = fraud_scores.c.score if flt.order == "score" else fraud_scores.c.occurred_at
    row = conn.execute(
        sa.select(key, fraud_scores.c.transaction_id)
        .where(fraud_scores.c.flagged == sa.true())
        .order_by(key.desc(), fraud_scores.c.transaction_id.desc())
        .offset(depth)
        .limit(1)
    ).first()
    if row is None:
        return None
    if flt.order == "score":
        return f"{row[0]}_{row[1]}"
    return f"{int(row[0].timestamp() * 1_000_000)}_{row[1]}"


def bench_review_queue(
    settings: Settings, alerts: int, *, repeats: int = 20, page_size: int = 50, remove: bool = False
) -> dict[str, Any]:
    """Load (once) and time; with `remove` the alerts are deleted afterwards."""
    try:
        return _bench(settings, alerts, repeats=repeats, page_size=page_size)
    finally:
        if remove:
            remove_alerts(settings)


def _bench(settings: Settings, alerts: int, *, repeats: int, page_size: int) -> dict[str, Any]:
    from ledgerguard.cluster.local import LocalCluster

    load = load_alerts(settings, alerts)
    LocalCluster(settings).wait_for_replica(timeout=600)
    engine = analytics_engine(settings)
    cases = {
        "score_first_page": (QueueFilter(status=None, order="score"), 0),
        "score_deep_page": (QueueFilter(status=None, order="score"), alerts // 2),
        "newest_first_page": (QueueFilter(status=None, order="newest"), 0),
        "newest_deep_page": (QueueFilter(status=None, order="newest"), alerts // 2),
        "open_by_rule_deep_page": (
            QueueFilter(status="open", rule="large_amount", order="score"),
            alerts // 2,
        ),
    }
    timings: dict[str, Any] = {}
    try:
        with engine.connect() as conn:
            stored = _stored(conn)
            for name, (flt, depth) in cases.items():
                after = _deep_cursor(conn, flt, depth) if depth else None
                seconds = []
                for _ in range(repeats):
                    began = time.perf_counter()
                    page, _next = queue_page(conn, flt=flt, after=after, limit=page_size)
                    seconds.append(time.perf_counter() - began)
                timings[name] = {
                    "depth": depth,
                    "rows": len(page),
                    "median_ms": round(statistics.median(seconds) * 1000, 2),
                    "max_ms": round(max(seconds) * 1000, 2),
                }
    finally:
        engine.dispose()
    return {"alerts": stored, "page_size": page_size, "repeats": repeats, **load, "pages": timings}
