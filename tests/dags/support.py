"""Helpers of the DAG tests: rows with a known time on the primary, report lines, a skip marker."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from importlib.util import find_spec
from pathlib import Path

import pytest

from ledgerguard.settings import Settings
from tests.support import api_conn

#: The DAG tests need Airflow (`make setup EXTRAS=dev,airflow`); found without importing it, since
#: importing Airflow before `AIRFLOW_HOME` is set would create ~/airflow.
requires_airflow = pytest.mark.skipif(
    find_spec("airflow") is None,
    reason="Airflow is not installed: make setup EXTRAS=dev,airflow",
)

INSERT = (
    "INSERT INTO transactions (user_id, amount, currency, amount_usd, occurred_at, created_at) "
    "VALUES (%s, %s, %s, %s, %s, UTC_TIMESTAMP(6))"
)


def insert_transaction(
    settings: Settings, *, user_id: int, amount: str, currency: str, occurred_at: datetime
) -> int:
    """One transaction on the primary as the API account; returns its id."""
    naive = occurred_at.astimezone(UTC).replace(tzinfo=None)
    amount_usd = amount if currency == "USD" else None
    with api_conn(settings) as conn, conn.cursor() as cur:
        cur.execute(INSERT, (user_id, amount, currency, amount_usd, naive))
        return int(cur.lastrowid)


def unique_user_id() -> int:
    """A user id no other test (or the fraud engine's tests) uses."""
    return 7_000_000_000 + time.monotonic_ns() % 1_000_000_000


def report_line(path: Path, tx_id: int) -> str | None:
    """The report's line for transaction `tx_id`, if any."""
    for line in path.read_text().splitlines():
        if line.startswith(f"{tx_id},"):
            return line
    return None
