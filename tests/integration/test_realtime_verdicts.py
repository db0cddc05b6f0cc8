"""The streaming scorer's verdict writes (`checkpoint.commit_batch`) on the real primary.

Every verdict lands in the narrow `realtime_verdicts`; flagged ones (and a flag withdrawn from a
row already there) also in `fraud_scores`, where the alert queue reads them. These tests commit
verdict frames directly (no binlog, no scorer process) and read every field back, so a layout
change that loses a verdict, a column or a revision fails here.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from ledgerguard.cluster.local import LocalCluster
from ledgerguard.db.engines import migration_engine, primary_engine, writer_engine
from ledgerguard.db.tables import (
    alert_deliveries,
    fraud_scores,
    realtime_verdicts,
    scorer_checkpoints,
)
from ledgerguard.db.verdicts import get_risk
from ledgerguard.fraud.store import upsert_scores
from ledgerguard.realtime.checkpoint import commit_batch
from ledgerguard.settings import Settings
from ledgerguard.utc import to_us

_PARTITION = "test-verdicts"
# ids of their own, far from the API's; removed after each test
_FIRST_ID = 7_700_000_000_000
_ids = itertools.count(_FIRST_ID + (int(time.time()) % 100_000) * 1_000)


@pytest.fixture
def writer(settings: Settings, cluster: LocalCluster) -> Iterator[sa.Engine]:
    engine = writer_engine(settings)
    try:
        yield engine
    finally:
        engine.dispose()
        cleanup = migration_engine(settings)
        try:
            with cleanup.begin() as conn:
                for table in (fraud_scores, realtime_verdicts, alert_deliveries):
                    conn.execute(sa.delete(table).where(table.c.transaction_id >= _FIRST_ID))
                conn.execute(
                    sa.delete(scorer_checkpoints).where(
                        scorer_checkpoints.c.partition_name == _PARTITION
                    )
                )
        finally:
            cleanup.dispose()


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A verdict frame (`scoring.VERDICT_COLUMNS`) of `rows`, defaults filled in."""
    at = datetime(2026, 11, 29, 9, 15, 30, 123_456, tzinfo=UTC)
    defaults = {
        "user_id": 42,
        "ts_us": to_us(at),
        "amount_units": 12_3400,
        "currency": "EUR",
        "usd_units": 13_0000,
        "score": 0.1234,
        "flagged": False,
        "rule_ids": "",
        "reasons": "",
        "model_version": None,
    }
    frame = pd.DataFrame([defaults | row for row in rows])
    frame["model_version"] = frame["model_version"].astype(object)
    return frame


def _commit(
    engine: sa.Engine,
    frame: pd.DataFrame,
    *,
    alerts: bool = False,
    replacing: list[int] | None = None,
) -> int:
    return commit_batch(
        engine,
        verdicts=frame,
        replacing=None if replacing is None else np.array(replacing, dtype=np.int64),
        partition_name=_PARTITION,
        gtid_pos="0-1-100",
        event_at=None,
        scored=len(frame),
        alerts=alerts,
    )


def _rows(engine: sa.Engine, table: sa.Table, ids: list[int]) -> dict[int, sa.Row[Any]]:
    with engine.connect() as conn:
        found = conn.execute(sa.select(table).where(table.c.transaction_id.in_(ids))).all()
    return {row.transaction_id: row for row in found}


def _risk(settings: Settings, transaction_id: int) -> sa.Row[Any] | None:
    async def read() -> sa.Row[Any] | None:
        engine = primary_engine(settings, pool_size=1)
        try:
            async with engine.connect() as conn:
                return await get_risk(conn, transaction_id=transaction_id)
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_every_verdict_is_in_the_narrow_table_and_flagged_ones_in_the_alert_queue(
    settings: Settings, writer: sa.Engine
):
    quiet, no_rate, flagged = next(_ids), next(_ids), next(_ids)
    frame = _frame(
        [
            {"transaction_id": quiet},
            {"transaction_id": no_rate, "usd_units": -1, "reasons": "no USD rate for EUR"},
            {
                "transaction_id": flagged,
                "score": 1.0,
                "flagged": True,
                "rule_ids": "large_amount,velocity",
                "reasons": "it's large",
                "model_version": "v3",
                "amount_units": -5_0000,
            },
        ]
    )
    before = datetime.now(UTC)
    assert _commit(writer, frame, alerts=True) == 1
    narrow = _rows(writer, realtime_verdicts, [quiet, no_rate, flagged])
    assert set(narrow) == {quiet, no_rate, flagged}
    for source in frame.to_dict("records"):
        row = narrow[source["transaction_id"]]
        assert row.score == Decimal(f"{source['score']:.4f}")
        assert row.flagged is bool(source["flagged"])
        assert (row.rule_ids, row.reasons) == (source["rule_ids"], source["reasons"])
        assert row.scored_at == row.first_scored_at >= before.replace(microsecond=0)
    assert narrow[flagged].model_version == "v3" and narrow[quiet].model_version is None

    wide = _rows(writer, fraud_scores, [quiet, no_rate, flagged])
    assert set(wide) == {flagged}  # the unflagged ones pay the narrow row only
    row = wide[flagged]
    assert (row.user_id, row.currency, row.source) == (42, "EUR", "realtime")
    assert row.occurred_at == datetime(2026, 11, 29, 9, 15, 30, 123_456, tzinfo=UTC)
    assert (row.amount, row.amount_usd) == (Decimal("-5.0000"), Decimal("13.0000"))
    assert (row.score, row.flagged) == (Decimal("1.0000"), True)
    assert (row.rule_ids, row.reasons, row.model_version) == (
        "large_amount,velocity",
        "it's large",
        "v3",
    )
    assert row.interval_start == datetime(2026, 11, 29, tzinfo=UTC)
    assert row.interval_end - row.interval_start == timedelta(days=1)
    assert row.analysed_at == narrow[flagged].scored_at

    # the webhook outbox has the flagged one's alert, with the verdict's time
    with writer.connect() as conn:
        payloads = conn.execute(
            sa.select(alert_deliveries.c.payload).where(
                alert_deliveries.c.transaction_id.in_([quiet, no_rate, flagged])
            )
        ).scalars()
        (payload,) = [json.loads(text) for text in payloads]
    assert payload["transaction_id"] == flagged and payload["source"] == "realtime"
    assert payload["scored_at"] == row.analysed_at.isoformat()
    assert payload["rule_ids"] == ["large_amount", "velocity"]

    # GET /transactions/{id}'s risk: from either table, the same shape
    risks = {i: _risk(settings, i) for i in (quiet, no_rate, flagged)}
    assert risks[quiet].source == "realtime" and risks[quiet].flagged is False
    assert risks[quiet].analysed_at == narrow[quiet].scored_at
    assert risks[no_rate].reasons == "no USD rate for EUR"
    assert risks[flagged].reasons == "it's large" and risks[flagged].flagged is True
    assert _risk(settings, next(_ids)) is None
    with writer.connect() as conn:
        saved = conn.execute(
            sa.select(scorer_checkpoints.c.gtid_pos).where(
                scorer_checkpoints.c.partition_name == _PARTITION
            )
        ).scalar_one()
    assert saved == "0-1-100"


def test_a_withdrawn_flag_leaves_no_flagged_row_and_a_replay_changes_nothing(
    settings: Settings, writer: sa.Engine
):
    transaction_id = next(_ids)
    flagged = {"transaction_id": transaction_id, "score": 0.95, "flagged": True}
    flagged |= {"rule_ids": "velocity", "reasons": "burst"}
    _commit(writer, _frame([flagged]))
    first = _rows(writer, realtime_verdicts, [transaction_id])[transaction_id]
    assert _rows(writer, fraud_scores, [transaction_id])[transaction_id].flagged is True

    withdrawn = _frame([{"transaction_id": transaction_id, "score": 0.2}])
    # a new transaction's verdict is not looked up (nothing to replace): the flag stays
    _commit(writer, withdrawn, replacing=[])
    assert _rows(writer, fraud_scores, [transaction_id])[transaction_id].flagged is True
    assert _rows(writer, realtime_verdicts, [transaction_id])[transaction_id].flagged is False
    _commit(writer, _frame([flagged]))
    # the scorer names its revisions: the alert queue's row is rewritten
    _commit(writer, withdrawn, replacing=[transaction_id])
    narrow = _rows(writer, realtime_verdicts, [transaction_id])[transaction_id]
    wide = _rows(writer, fraud_scores, [transaction_id])[transaction_id]
    assert (narrow.flagged, narrow.rule_ids, narrow.score) == (False, "", Decimal("0.2000"))
    assert narrow.first_scored_at == first.first_scored_at
    assert narrow.scored_at > first.scored_at
    # the alert queue's row follows the revision: no alert left for an unflagged verdict
    assert (wide.flagged, wide.rule_ids, wide.reasons, wide.score) == (
        False,
        "",
        "",
        Decimal("0.2000"),
    )
    assert wide.analysed_at == narrow.scored_at

    _commit(writer, withdrawn)  # replayed after a crash (every verdict looked up): nothing moves
    assert _rows(writer, realtime_verdicts, [transaction_id])[transaction_id] == narrow
    assert _rows(writer, fraud_scores, [transaction_id])[transaction_id] == wide


def test_the_nightly_verdict_wins_and_the_real_time_one_stays_visible(
    settings: Settings, writer: sa.Engine
):
    transaction_id = next(_ids)
    flagged = {"transaction_id": transaction_id, "score": 0.9, "flagged": True}
    flagged |= {"rule_ids": "velocity", "reasons": "burst"}
    _commit(writer, _frame([flagged]))
    nightly = _frame([{"transaction_id": transaction_id, "score": 0.3}])
    day = datetime(2026, 11, 29, tzinfo=UTC)
    with writer.begin() as conn:
        upsert_scores(
            conn, nightly, start=day, end=day + timedelta(days=1), analysed_at=datetime.now(UTC)
        )
    _commit(writer, _frame([flagged]))  # the scorer again (a replay): the nightly row stays
    wide = _rows(writer, fraud_scores, [transaction_id])[transaction_id]
    assert (wide.source, wide.flagged, wide.score) == ("nightly", False, Decimal("0.3000"))
    narrow = _rows(writer, realtime_verdicts, [transaction_id])[transaction_id]
    assert (narrow.flagged, narrow.score, narrow.rule_ids) == (True, Decimal("0.9000"), "velocity")
    risk = _risk(settings, transaction_id)
    assert (risk.source, risk.flagged) == ("nightly", False)


def test_bench_verdict_writes_reports_every_layout_and_cleans_up(
    settings: Settings, cluster: LocalCluster, tmp_path, monkeypatch
):
    """Smoke test of `ledgerguard bench verdict-writes` (figures belong in benchmarks/README.md)."""
    from typer.testing import CliRunner

    from ledgerguard.cli.main import app as cli
    from ledgerguard.load.bench.verdict_writes import LAYOUTS
    from tests.support import settings_env

    monkeypatch.chdir(tmp_path)  # no `.env` found: only the test's environment counts
    args = ["bench", "verdict-writes", "--batches", "2", "--batch-rows", "20", "--rounds", "1"]
    result = CliRunner().invoke(cli, args, env=settings_env(settings))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    got = {(r["layout"], r["binlog_annotate_row_events"]) for r in report["results"]}
    assert got == {(layout, on) for layout in LAYOUTS for on in (True, False)}
    for figures in report["results"]:
        assert figures["verdicts"] == 40
        assert figures["replica_binlog_bytes_per_verdict"] > 0
        assert figures["scorer_transactions_kept"] == 0  # verdict events are skipped
    engine = migration_engine(settings)
    try:
        with engine.connect() as conn:
            assert not sa.inspect(conn).has_table("bench_fraud_scores_pk_only")
            left = conn.execute(
                sa.select(sa.func.count()).where(scorer_checkpoints.c.partition_name.like("bench%"))
            ).scalar_one()
            annotate = conn.execute(sa.text("SELECT @@GLOBAL.binlog_annotate_row_events")).scalar()
    finally:
        engine.dispose()
    assert left == 0
    assert int(annotate) == 0  # the configured value is back (the generated configs' OFF)
