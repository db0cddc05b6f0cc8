"""The renderings of a verdict row draw on one column list (`fraud.verdict_columns`).

`verdict_rows` (dicts: alerts) and `verdict_literals` (SQL text: the real-time scorer's rows
and, with its interval, the nightly run's) once each listed the columns themselves, and so did
the nightly run's driver tuples before session 18; these tests pin them to the tables' columns
and to each other's values, so a column added to one and not the others fails here, not in
production.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from ledgerguard.db.tables import fraud_scores, realtime_verdicts
from ledgerguard.fraud.engine.scoring import VERDICT_COLUMNS
from ledgerguard.fraud.store import verdict_rows
from ledgerguard.fraud.verdict_columns import (
    COLUMNS,
    REALTIME_TIME_COLUMNS,
    WRITE_COLUMNS,
    verdict_literals,
)
from ledgerguard.utc import to_us
from tests.unit.fraud.helpers import assert_literals_hold

NOW = datetime(2026, 11, 29, 14, 30, 1, 250, tzinfo=UTC)
START = datetime(2026, 11, 28, tzinfo=UTC)
SCORES = [column.name for column in fraud_scores.c]
REALTIME = [column.name for column in realtime_verdicts.c]


def _verdicts() -> pd.DataFrame:
    """Only the verdict frame's columns (`scoring.VERDICT_COLUMNS`): every rendering must make
    its rows from those alone."""
    return pd.DataFrame(
        {
            "transaction_id": [21, 22],
            "user_id": [5, 6],
            "ts_us": [to_us(START + timedelta(hours=1)), to_us(START + timedelta(hours=30))],
            "amount_units": [12_3456, 7],
            "currency": ["USD", "EUR"],
            "usd_units": [12_3456, -1],
            "score": [0.5, 0.98765],
            "flagged": [False, True],
            "rule_ids": ["", "large_amount"],
            "reasons": ["", "it's large"],
            "model_version": pd.Series([None, "v2"], dtype=object),
        }
    )[list(VERDICT_COLUMNS)]


def test_the_column_list_is_the_tables_columns():
    """A verdict's own columns, in table order, then the write's, make `fraud_scores`."""
    assert [column.name for column in COLUMNS] == [n for n in SCORES if n not in WRITE_COLUMNS]
    assert set(WRITE_COLUMNS) < set(SCORES)
    assert set(REALTIME) - set(SCORES) == set(REALTIME_TIME_COLUMNS)


def test_the_renderings_have_the_same_columns_and_values():
    verdicts = _verdicts()
    end = START + timedelta(days=2)
    dicts = verdict_rows(
        verdicts, interval_start=START, interval_end=end, analysed_at=NOW, source="nightly"
    )
    nightly = verdict_literals(
        verdicts,
        NOW,
        lambda text: f"<{text}>",
        tuple(SCORES),
        source="nightly",
        interval=(START, end),
    )
    literals = verdict_literals(verdicts, NOW, lambda text: f"<{text}>")
    assert set(dicts[0]) == set(nightly) == set(SCORES)
    assert set(literals) == set(SCORES) | set(REALTIME)
    # the nightly run's literals hold the dicts' values, its interval and source included
    assert_literals_hold(nightly, dicts)
    assert nightly["source"] == ["<nightly>"] * 2
    # a real-time row's interval is its UTC day, in both renderings that have no interval
    (_, late) = verdict_rows(verdicts, analysed_at=NOW, source="realtime")
    assert late["interval_start"] == START + timedelta(days=1)
    assert literals["interval_start"][1] == "'2026-11-29 00:00:00.000000'"
