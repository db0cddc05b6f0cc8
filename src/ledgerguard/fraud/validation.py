"""Validation of imported CSV files: every bad row, by line number, before anything is written.

`read_csv_rows` checks the header and field counts and returns the rows as strings with their
line numbers (line 1 is the header); `validate_transactions` checks every field and returns the
parsed columns, or raises `ImportRejected` listing every bad row. See `ledgerguard.fraud.imports`
for the rules and the all-or-nothing policy.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from ledgerguard.fraud.errors import ImportRejected, RowError
from ledgerguard.fraud.fx import parse_units
from ledgerguard.money import MAX_AMOUNT, MoneyError, active_currencies, check_amount

#: Same ceiling as the API's request validation.
_INTEGER = r"^[0-9]{1,18}$"
_AMOUNT = r"^[0-9]{1,15}(\.[0-9]{1,4})?$"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def read_csv_rows(path: Path, required: tuple[str, ...]) -> tuple[pd.DataFrame, np.ndarray]:
    """All rows as strings plus each row's line number; header and field counts checked.

    Files without quotes (the common case, and what our exports write) go through pandas' C
    parser, a line being a row; files with quoted fields go through the `csv` module, which
    knows that a quoted field may span lines.
    """
    text = path.read_text(encoding="utf-8-sig")
    if '"' in text or "\r" in text:
        return _read_quoted_csv(path, text, required)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    header = lines[0].split(",") if lines else None
    _check_header(path, header, required)
    assert header is not None
    width = len(header)
    errors = [
        RowError(number, f"expected {width} fields, found {line.count(',') + 1}")
        for number, line in enumerate(lines[1:], start=2)
        if line and line.count(",") != width - 1
    ]
    if errors:
        raise ImportRejected(str(path), errors)
    frame = pd.read_csv(
        io.StringIO(text),
        dtype=str,
        na_filter=False,
        skip_blank_lines=False,
        header=0,
        names=header,
    )
    numbers = np.arange(2, len(frame) + 2, dtype=np.int64)
    blank = np.fromiter((line == "" for line in lines[1:]), dtype=bool, count=len(frame))
    if blank.any():
        frame, numbers = frame[~blank].reset_index(drop=True), numbers[~blank]
    return frame.astype(object), numbers


def _check_header(path: Path, header: list[str] | None, required: tuple[str, ...]) -> None:
    if header is None:
        raise ImportRejected(str(path), [RowError(1, "empty file, expected a header line")])
    if any(name not in header for name in required) or len(set(header)) != len(header):
        raise ImportRejected(
            str(path),
            [RowError(1, f"header must name {', '.join(required)} once each (got {header})")],
        )


def _read_quoted_csv(
    path: Path, text: str, required: tuple[str, ...]
) -> tuple[pd.DataFrame, np.ndarray]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    _check_header(path, header, required)
    assert header is not None
    errors: list[RowError] = []
    rows: list[list[str]] = []
    lines: list[int] = []
    for row in reader:
        if not row:
            continue
        if len(row) != len(header):
            errors.append(
                RowError(reader.line_num, f"expected {len(header)} fields, found {len(row)}")
            )
            continue
        rows.append(row)
        lines.append(reader.line_num)
    if errors:
        raise ImportRejected(str(path), errors)
    return pd.DataFrame(rows, columns=header, dtype=object), np.asarray(lines, dtype=np.int64)


class RowChecks:
    """Collects row errors from vectorised checks."""

    def __init__(self, lines: np.ndarray) -> None:
        self.lines = lines
        self.errors: list[RowError] = []
        self.bad = np.zeros(len(lines), dtype=bool)

    def fail(self, mask: np.ndarray | pd.Series, message: str | Callable[[int], str]) -> None:
        for position in np.flatnonzero(np.asarray(mask) & ~self.bad):
            text = message(int(position)) if callable(message) else message
            self.errors.append(RowError(int(self.lines[position]), text))
        self.bad |= np.asarray(mask)

    def raise_if_any(self, path: Path) -> None:
        if self.errors:
            raise ImportRejected(str(path), sorted(self.errors, key=lambda error: error.line))


def check_external_ids(frame: pd.DataFrame, checks: RowChecks) -> None:
    ids = frame["external_id"]
    checks.fail((ids.str.len() == 0).to_numpy(), "external_id is empty")
    checks.fail((ids.str.len() > 64).to_numpy(), "external_id is longer than 64 characters")
    checks.fail(ids.str.contains(_CONTROL).to_numpy(), "external_id contains control characters")
    first_line = dict(
        zip(ids[~ids.duplicated()], checks.lines[~ids.duplicated().to_numpy()], strict=True)
    )
    checks.fail(
        ids.duplicated().to_numpy(),
        lambda i: f"duplicate external_id {ids.iat[i]!r} (first on line {first_line[ids.iat[i]]})",
    )


def validate_transactions(path: Path, frame: pd.DataFrame, lines: np.ndarray) -> pd.DataFrame:
    """Parsed columns of a valid file, or `ImportRejected` naming every bad row."""
    checks = RowChecks(lines)
    check_external_ids(frame, checks)
    user = frame["user_id"].str.fullmatch(_INTEGER)
    checks.fail(~user.to_numpy(), "user_id must be a positive integer")
    checks.fail(
        user & (frame["user_id"].where(user, "1").astype("int64") <= 0),
        "user_id must be a positive integer",
    )
    terminal = frame["terminal_id"]
    checks.fail(
        ~(terminal.eq("") | terminal.str.fullmatch(_INTEGER)).to_numpy(),
        "terminal_id must be an integer or empty",
    )
    currencies = active_currencies()
    currency_ok = frame["currency"].isin(currencies).to_numpy()
    checks.fail(
        ~currency_ok,
        lambda i: (
            f"currency {frame['currency'].iat[i]!r} is not an active ISO 4217 code (e.g. USD)"
        ),
    )
    amount_ok = frame["amount"].str.fullmatch(_AMOUNT).to_numpy()
    checks.fail(
        ~amount_ok,
        lambda i: f"amount {frame['amount'].iat[i]!r} is not a plain decimal like 15000.00",
    )
    amounts, codes = frame["amount"].tolist(), frame["currency"].tolist()
    for position in np.flatnonzero(amount_ok & currency_ok & ~checks.bad).tolist():
        try:
            check_amount(Decimal(amounts[position]), codes[position], maximum=MAX_AMOUNT)
        except MoneyError as exc:
            checks.errors.append(RowError(int(lines[position]), f"amount: {exc}"))
            checks.bad[position] = True
    occurred = pd.to_datetime(frame["occurred_at"], utc=True, format="ISO8601", errors="coerce")
    checks.fail(
        occurred.isna().to_numpy(),
        lambda i: f"occurred_at {frame['occurred_at'].iat[i]!r} is not an ISO 8601 date-time",
    )
    checks.raise_if_any(path)
    return pd.DataFrame(
        {
            "external_id": frame["external_id"],
            "user_id": frame["user_id"].astype("int64"),
            "terminal_id": frame["terminal_id"],
            "amount": frame["amount"],
            "amount_units": parse_units(frame["amount"]),
            "currency": frame["currency"],
            "ts_us": occurred.astype("datetime64[us, UTC]").astype("int64").to_numpy(),
            "occurred_at": np.datetime_as_string(
                occurred.dt.tz_localize(None).to_numpy().astype("datetime64[us]"), unit="us"
            ),
        }
    )
