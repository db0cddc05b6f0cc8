"""The compliance file and the engine's rule find the same structuring groups (one definition)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

from ledgerguard.fraud.reports.compliance import structuring_candidates
from ledgerguard.settings.fraud import FraudParameters
from tests.unit.fraud.helpers import score_rows

DAY_END = datetime(2025, 3, 6, tzinfo=UTC)


def _near_rows(
    user_id: int, hours_before_end: tuple[int, ...], amount: str
) -> list[SimpleNamespace]:
    return [
        SimpleNamespace(
            id=n,
            user_id=user_id,
            occurred_at=(DAY_END - timedelta(hours=h)).replace(tzinfo=None),
            amount_usd=Decimal(amount),
        )
        for n, h in enumerate(sorted(hours_before_end, reverse=True), start=1)
    ]


def test_a_group_reaching_back_before_the_fixed_window_is_one_group_in_both():
    """80 h, 60 h and 10 h before the day's end: one sliding 72 h window holds all three."""
    params = FraudParameters()
    hours = (80, 60, 10)
    lines = structuring_candidates(
        _near_rows(5, hours, "9000.00"), params, start=DAY_END - timedelta(days=1)
    )
    first = (DAY_END - timedelta(hours=80)).isoformat().replace("+00:00", ".000000Z")
    last = (DAY_END - timedelta(hours=10)).isoformat().replace("+00:00", ".000000Z")
    assert lines == [(5, 3, "27000.0000", first, last)]

    rows = [(5, 1, DAY_END - timedelta(hours=h), "9000.00", "USD") for h in hours]
    assert score_rows(rows, params=params).counts_by_rule["structuring"] == 3


def test_groups_without_a_payment_on_the_day_and_non_groups_are_left_out():
    params = FraudParameters()
    day_start = DAY_END - timedelta(days=1)
    before_the_day = _near_rows(6, (60, 50), "9000.00")  # a group, but all before the day
    alone = _near_rows(7, (5,), "9500.00")  # one near-line payment is not structuring
    assert structuring_candidates(before_the_day + alone, params, start=day_start) == []
    assert structuring_candidates([], params, start=day_start) == []
