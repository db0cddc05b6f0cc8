"""Files an importer cannot read are refused with the line number, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledgerguard.fraud.errors import ImportRejected
from ledgerguard.fraud.imports.check import TRANSACTION_COLUMNS
from ledgerguard.fraud.imports.csv_rows import csv_chunks

HEADER = b"external_id,user_id,terminal_id,amount,currency,occurred_at\n"
GOOD = b"a,1,1,1.00,USD,2025-01-01T00:00:00Z\n"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (GOOD + b"b\xff,1,1,1.00,USD,2025-01-01T00:00:00Z\n", "line 3: invalid UTF-8"),
        (GOOD + b'"b,1,1,1.00,USD,x\n' + b"c" * 200_000 + b",1\n", "line 4: malformed CSV"),
    ],
)
def test_unreadable_file_is_refused_with_the_line(tmp_path: Path, body: bytes, message: str):
    path = tmp_path / "t.csv"
    path.write_bytes(HEADER + body)
    with pytest.raises(ImportRejected, match=message):
        list(csv_chunks(path, TRANSACTION_COLUMNS))


def test_importer_and_api_share_the_occurred_at_range_and_control_character_rule(tmp_path: Path):
    from pydantic import ValidationError

    from ledgerguard.api.schemas import TransactionCreate
    from ledgerguard.field_rules import occurred_at_problem
    from ledgerguard.fraud.imports.validation import check_transactions

    path = tmp_path / "t.csv"
    path.write_bytes(
        HEADER
        + b"a,1,1,1.00,USD,1998-12-31T00:00:00Z\n"
        + b"b,1,1,1.00,USD,2999-01-01T00:00:00Z\n"
        + b"c\x01,1,1,1.00,USD,2025-01-01T00:00:00Z\n"
    )
    (chunk,) = csv_chunks(path, TRANSACTION_COLUMNS)
    _, errors = check_transactions(chunk.frame, chunk.lines)
    text = " | ".join(str(e) for e in errors)
    assert "before 1999" in text and "in the future" in text and "control" in text, text
    for moment in ("1998-12-31T00:00:00Z", "2999-01-01T00:00:00Z"):  # the API's rule: 400
        body = TransactionCreate(user_id=1, amount="1.00", currency="USD", occurred_at=moment)
        assert occurred_at_problem(body.occurred_at)
    with pytest.raises(ValidationError):
        TransactionCreate(user_id=1, amount="1.00", currency="USD", external_id="c\x01")
