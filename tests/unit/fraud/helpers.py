"""Small hand-made transaction frames for rule tests (no database)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache

import numpy as np
import pandas as pd

from ledgerguard.fraud.engine.frame import engine_frame
from ledgerguard.fraud.engine.scoring import PageScores, score_frame
from ledgerguard.fraud.engine.terminal_history import TerminalHistory, add_fraud_customers
from ledgerguard.money import FxRates
from ledgerguard.settings.fraud import FraudParameters
from ledgerguard.utc import utc_naive

T0 = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)  # a Monday with an ECB fixing


@cache
def fx() -> FxRates:
    return FxRates()


def rows_frame(rows: Sequence[tuple[int, int, datetime, str, str]]) -> pd.DataFrame:
    """(user_id, terminal_id, occurred_at, amount, currency) rows in the import format."""
    return pd.DataFrame(
        {
            "external_id": [f"t{i}" for i in range(len(rows))],
            "user_id": [row[0] for row in rows],
            "terminal_id": [row[1] for row in rows],
            "amount": [row[3] for row in rows],
            "currency": [row[4] for row in rows],
            "occurred_at": [row[2].isoformat() for row in rows],
        }
    )


def score_rows(
    rows: Sequence[tuple[int, int, datetime, str, str]],
    *,
    params: FraudParameters | None = None,
    history: TerminalHistory | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> PageScores:
    """Score every row (store_all) within [start, end), default: all of them."""
    frame = engine_frame(rows_frame(rows), fx()).drop(columns="external_id")
    return score_frame(
        frame,
        history or TerminalHistory.empty(),
        params or FraudParameters(),
        start=start or min(row[2] for row in rows),
        end=end or max(row[2] for row in rows) + timedelta(seconds=1),
        store_all=True,
    )


def verdict(scores: PageScores, transaction_id: int) -> pd.Series:
    """The verdict row of the n-th input row (ids are 1-based in input order)."""
    rows = scores.rows.set_index("transaction_id")
    return rows.loc[transaction_id]


def fraud_customers_of(days: pd.DataFrame, *, one_customer: Sequence[int] = ()) -> pd.DataFrame:
    """The fraud-customer table of daily (terminal_id, day, n_tx, n_fraud) rows whose frauds
    were each a different customer's (a compromise defrauds whoever pays there), except on the
    terminals of `one_customer`, where every fraud was customer 7's (a stolen card)."""
    frauds = days.loc[days.index.repeat(days["n_fraud"]), ["terminal_id", "day"]]
    frauds["user_id"] = np.where(
        frauds["terminal_id"].isin(list(one_customer)), 7, 1_000 + np.arange(len(frauds))
    )
    return add_fraud_customers([frauds.assign(n_fraud=1)])


def history_of(days: pd.DataFrame, *, one_customer: Sequence[int] = ()) -> TerminalHistory:
    """The `TerminalHistory` of those rows and customers (`fraud_customers_of`)."""
    return TerminalHistory(days, fraud_customers_of(days, one_customer=one_customer))


def assert_literals_hold(columns: dict[str, list[str]], rows: list[dict[str, object]]) -> None:
    """SQL literals of `verdict_literals` (strings quoted as `<text>`) hold the values of the
    same verdicts' `verdict_rows`: numbers with the same places, times as naive UTC."""

    def parsed(text: str) -> object:
        if text == "NULL":
            return None
        if text.startswith("<"):
            return text[1:-1]
        if text.startswith("'"):
            return datetime.fromisoformat(text[1:-1])
        return Decimal(text)

    for index, row in enumerate(rows):
        for name, value in row.items():
            got = parsed(columns[name][index])
            if isinstance(value, datetime):
                value = utc_naive(value)
            elif isinstance(value, bool):
                value = Decimal(int(value))
            elif isinstance(value, int):
                value = Decimal(value)
            assert got == value, (name, index, got, value)
            if isinstance(value, Decimal):  # same number of places too
                assert str(got) == str(value), (name, index, got, value)
