"""Report files: exact header, currency decimals, atomic replace."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

from ledgerguard.fraud.reports.fraud_report import write_csv_atomic, write_fraud_reports


def _row(**values):
    base = {
        "transaction_id": 1,
        "user_id": 999,
        "occurred_at": datetime(2025, 1, 31, 10, tzinfo=UTC),
        "amount": Decimal("15000.0000"),
        "currency": "USD",
        "amount_usd": Decimal("15000.0000"),
        "score": Decimal("1.0000"),
        "flagged": True,
        "rule_ids": "large_amount",
        "reasons": "large_amount: 15000.0000 USD-equivalent is above 10000.00 USD",
    }
    return SimpleNamespace(**(base | values))


def test_report_matches_the_original_design(tmp_path: Path):
    rows = [
        _row(),
        _row(transaction_id=2, amount=Decimal("2000000.0000"), currency="JPY", flagged=True),
        _row(
            transaction_id=3,
            currency="XOF",
            amount=Decimal("5000"),
            amount_usd=None,
            flagged=False,
            score=Decimal("0"),
        ),
    ]
    report, details, flagged = write_fraud_reports(tmp_path, date(2025, 1, 31), rows)
    assert report.name == "fraud_report_2025-01-31.csv"
    assert report.read_text() == (
        "Transaction ID,User ID,Amount,Currency,Status\n"
        "1,999,15000.00,USD,FLAGGED_FRAUD\n"
        "2,999,2000000,JPY,FLAGGED_FRAUD\n"
    )
    assert flagged == 2
    lines = details.read_text().splitlines()
    assert details.name == "fraud_report_2025-01-31_details.csv"
    assert lines[0].startswith(
        "Transaction ID,User ID,Occurred At,Amount,Currency,Amount USD,Score"
    )
    assert lines[3].startswith("3,999,2025-01-31T10:00:00.000000Z,5000,XOF,,0.0000,NO_USD_RATE")


def test_atomic_write_replaces_whole_file_and_leaves_no_temporaries(tmp_path: Path):
    target = tmp_path / "r.csv"
    write_csv_atomic(target, ("a",), [(1,)])
    write_csv_atomic(target, ("a",), [(2,)])
    assert target.read_text() == "a\n2\n"
    assert [p.name for p in tmp_path.iterdir()] == ["r.csv"]
