"""CSV validation of the importers (no database): bad rows by line number, whole file refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledgerguard.fraud.errors import ImportRejected
from ledgerguard.fraud.imports.csv_rows import read_csv_rows
from ledgerguard.fraud.imports.importer import TRANSACTION_COLUMNS
from ledgerguard.fraud.imports.validation import validate_transactions

HEADER = ",".join(TRANSACTION_COLUMNS)


def _validate(tmp_path: Path, body: str):
    path = tmp_path / "tx.csv"
    path.write_text(f"{HEADER}\n{body}", encoding="utf-8")
    frame, lines = read_csv_rows(path, TRANSACTION_COLUMNS)
    return validate_transactions(path, frame, lines)


def test_good_rows_parse_exactly(tmp_path: Path):
    parsed = _validate(
        tmp_path,
        "a1,999,7,15000.00,USD,2025-01-31T10:00:00Z\n"
        "a2,5,,1500,JPY,2025-01-31 11:00:00\n"
        "a3,5,8,9000.5,EUR,2025-01-31T12:00:00+02:00\n",
    )
    assert parsed["amount_units"].tolist() == [150_000_000, 15_000_000, 90_005_000]
    assert parsed["occurred_at"].tolist()[2] == "2025-01-31T10:00:00.000000"  # to UTC
    assert parsed["terminal_id"].tolist()[1] == ""


def test_every_bad_row_is_reported_with_its_line(tmp_path: Path):
    body = (
        "ok1,1,1,10.00,USD,2025-01-31T10:00:00Z\n"  # line 2
        "b1,x,1,10.00,USD,2025-01-31T10:00:00Z\n"  # 3 user_id
        "b2,1,1,10.001,USD,2025-01-31T10:00:00Z\n"  # 4 too many decimals
        "b3,1,1,10.00,ZZZ,2025-01-31T10:00:00Z\n"  # 5 currency
        "b4,1,1,10.00,USD,yesterday\n"  # 6 time
        "ok1,1,1,10.00,USD,2025-01-31T10:00:00Z\n"  # 7 duplicate
        "b5,1,1,-3,USD,2025-01-31T10:00:00Z\n"  # 8 amount
        "b6,1,1,5.5,JPY,2025-01-31T10:00:00Z\n"  # 9 JPY has no decimals
    )
    with pytest.raises(ImportRejected) as info:
        _validate(tmp_path, body)
    lines = [error.line for error in info.value.errors]
    assert lines == [3, 4, 5, 6, 7, 8, 9]
    assert "nothing was loaded" in str(info.value)
    assert "first on line 2" in str(info.value)
    assert "JPY allows at most 0" in str(info.value)


def test_wrong_field_counts_and_headers(tmp_path: Path):
    with pytest.raises(ImportRejected) as info:
        _validate(tmp_path, "a,1,1,10.00,USD\nb,1,1,10.00,USD,2025-01-31T10:00:00Z,extra\n")
    assert [error.line for error in info.value.errors] == [2, 3]
    path = tmp_path / "bad_header.csv"
    path.write_text("id,amount\n1,2\n")
    with pytest.raises(ImportRejected, match="header must name"):
        read_csv_rows(path, TRANSACTION_COLUMNS)


def test_quoted_fields_keep_line_numbers(tmp_path: Path):
    body = '"a,1",1,1,10.00,USD,2025-01-31T10:00:00Z\n"b",1,1,bad,USD,2025-01-31T10:00:00Z\n'
    with pytest.raises(ImportRejected) as info:
        _validate(tmp_path, body)
    assert [error.line for error in info.value.errors] == [3]
