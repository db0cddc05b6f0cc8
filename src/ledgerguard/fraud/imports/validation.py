"""Validation of imported CSV files: every bad row, by line number, before anything is kept.

The rows come as strings with their line numbers from `ledgerguard.fraud.imports.csv_rows`
(which checks the header and each line's field count). `check_transactions` checks every field
of a chunk and returns the parsed columns plus the bad rows; `validate_transactions` is the
whole-file form. See `ledgerguard.fraud.imports.importer` for the rules and the all-or-nothing
policy.

Every check is vectorised; only rows already known to be bad go through Python one by one, to
word their message (the same words as the API's `money.check_amount`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from ledgerguard.field_rules import (
    CONTROL_CHARACTERS,
    EARLIEST_OCCURRED_AT,
    latest_occurred_at,
)
from ledgerguard.fraud.errors import ImportRejected, RowError
from ledgerguard.fraud.imports.csv_rows import csv_chunks
from ledgerguard.money import (
    MAX_AMOUNT,
    MoneyError,
    active_currencies,
    check_amount,
    currency_exponent,
)

_INTEGER = r"^[0-9]{1,18}$"
_AMOUNT = r"^[0-9]{1,15}(\.[0-9]{1,4})?$"
_CONTROL = CONTROL_CHARACTERS
#: Amounts travel as integer 10^-4 units of their currency (the scale of DECIMAL(19,4)).
_UNITS = 10_000
_MAX_UNITS = int(MAX_AMOUNT) * _UNITS


class RowChecks:
    """Collects row errors from vectorised checks; a row keeps its first error only."""

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


def check_external_id_text(frame: pd.DataFrame, checks: RowChecks) -> None:
    """Empty, too long or control characters; duplicates are the caller's (whole file)."""
    ids = frame["external_id"]
    length = ids.str.len().to_numpy()
    checks.fail(length == 0, "external_id is empty")
    checks.fail(length > 64, "external_id is longer than 64 characters")
    if _CONTROL.search("".join(ids.tolist())):  # one scan of the chunk; rows only if needed
        checks.fail(
            ids.str.contains(_CONTROL).to_numpy(), "external_id contains control characters"
        )


def check_moment_range(
    frame: pd.DataFrame, column: str, moments: pd.Series, checks: RowChecks
) -> None:
    """The API's range for parsed moments (`occurred_at`, `labelled_at`; NaT is skipped): not
    before 1999, not in the future beyond the allowed clock skew (`field_rules`)."""
    checks.fail(
        (moments.notna() & (moments > pd.Timestamp(latest_occurred_at()))).to_numpy(),
        lambda i: f"{column} {frame[column].iat[i]!r} is in the future",
    )
    checks.fail(
        (moments.notna() & (moments < pd.Timestamp(EARLIEST_OCCURRED_AT))).to_numpy(),
        lambda i: f"{column} {frame[column].iat[i]!r} is before 1999",
    )


def check_external_ids(frame: pd.DataFrame, checks: RowChecks) -> None:
    """`check_external_id_text` plus duplicates within `frame` (a whole file in memory)."""
    check_external_id_text(frame, checks)
    ids = frame["external_id"]
    repeated = ids.duplicated().to_numpy()
    first_line = dict(zip(ids[~repeated], checks.lines[~repeated], strict=True))
    checks.fail(
        repeated,
        lambda i: f"duplicate external_id {ids.iat[i]!r} (first on line {first_line[ids.iat[i]]})",
    )


def check_transactions(
    frame: pd.DataFrame, lines: np.ndarray
) -> tuple[pd.DataFrame | None, list[RowError]]:
    """Parsed columns of a chunk (None when a row is bad) and its bad rows.

    External ids are checked for their text only: a duplicate may sit in another chunk, so the
    importer checks them across the whole file.
    """
    checks = RowChecks(lines)
    check_external_id_text(frame, checks)
    user = frame["user_id"].str.fullmatch(_INTEGER).to_numpy(dtype=bool)
    checks.fail(~user, "user_id must be a positive integer")
    checks.fail(
        user & (frame["user_id"].where(user, "1").astype("int64").to_numpy() <= 0),
        "user_id must be a positive integer",
    )
    terminal = frame["terminal_id"]
    checks.fail(
        ~(terminal.eq("") | terminal.str.fullmatch(_INTEGER)).to_numpy(dtype=bool),
        "terminal_id must be an integer or empty",
    )
    exponents = frame["currency"].map(_exponents())  # NaN: not an active code
    currency_ok = exponents.notna().to_numpy()
    checks.fail(
        ~currency_ok,
        lambda i: (
            f"currency {frame['currency'].iat[i]!r} is not an active ISO 4217 code (e.g. USD)"
        ),
    )
    amount_ok = frame["amount"].str.fullmatch(_AMOUNT).to_numpy(dtype=bool)
    checks.fail(
        ~amount_ok,
        lambda i: f"amount {frame['amount'].iat[i]!r} is not a plain decimal like 15000.00",
    )
    units = _amount_units(frame["amount"].where(amount_ok, "0"))
    step = 10 ** (4 - np.minimum(exponents.fillna(4).to_numpy(dtype=np.int64), 4))
    wrong_amount = (
        amount_ok & currency_ok & ((units <= 0) | (units > _MAX_UNITS) | (units % step != 0))
    )
    checks.fail(wrong_amount, lambda i: _amount_message(frame, i))
    occurred = pd.to_datetime(frame["occurred_at"], utc=True, format="ISO8601", errors="coerce")
    checks.fail(
        occurred.isna().to_numpy(),
        lambda i: f"occurred_at {frame['occurred_at'].iat[i]!r} is not an ISO 8601 date-time",
    )
    check_moment_range(frame, "occurred_at", occurred, checks)
    if checks.errors:
        return None, checks.errors
    parsed = pd.DataFrame(
        {
            "external_id": frame["external_id"],
            "user_id": frame["user_id"].astype("int64"),
            "terminal_id": frame["terminal_id"],
            "amount": frame["amount"],
            "amount_units": units,
            "currency": frame["currency"],
            "ts_us": occurred.astype("datetime64[us, UTC]").astype("int64").to_numpy(),
            "occurred_at": np.datetime_as_string(
                occurred.dt.tz_localize(None).to_numpy().astype("datetime64[us]"), unit="us"
            ),
        }
    )
    return parsed, []


def validate_transactions(path: Path, frame: pd.DataFrame, lines: np.ndarray) -> pd.DataFrame:
    """Parsed columns of a whole valid file, or `ImportRejected` naming every bad row."""
    checks = RowChecks(lines)
    check_external_ids(frame, checks)
    parsed, errors = check_transactions(frame, lines)
    seen = {error.line for error in checks.errors}
    checks.errors += [error for error in errors if error.line not in seen]
    checks.raise_if_any(path)
    assert parsed is not None
    return parsed


@functools.cache
def _exponents() -> dict[str, int]:
    """Minor-unit digits of every active ISO 4217 code (USD 2, JPY 0)."""
    return {code: currency_exponent(code) for code in active_currencies()}


def _amount_units(amounts: pd.Series) -> np.ndarray:
    """Exact 10^-4 units of plain decimal strings; amounts far beyond the maximum give -1."""
    parts = amounts.str.partition(".")
    whole = parts[0].astype("int64").to_numpy()
    fraction = parts[2].str.ljust(4, "0").astype("int64").to_numpy()
    fits = whole <= int(MAX_AMOUNT) + 1  # no int64 overflow below
    return np.where(fits, np.where(fits, whole, 0) * _UNITS + fraction, _MAX_UNITS + 1)


def _amount_message(frame: pd.DataFrame, i: int) -> str:
    """The API's words for a bad amount (this row is known to be bad)."""
    try:
        check_amount(Decimal(frame["amount"].iat[i]), frame["currency"].iat[i], maximum=MAX_AMOUNT)
    except MoneyError as exc:
        return f"amount: {exc}"
    return "amount: not valid for the currency"


class DuplicateIds:
    """External ids seen across the chunks of a file, to find ids that occur twice.

    Holds a 64-bit hash and the line of every row (16 bytes a row, not the strings). Equal
    hashes are only candidates: `errors` reads those rows again and compares the ids themselves,
    so a hash collision never refuses a good file.
    """

    def __init__(self) -> None:
        self._hashes: list[np.ndarray] = []
        self._lines: list[np.ndarray] = []

    def add(self, hashes: np.ndarray, lines: np.ndarray) -> None:
        """Hashes of a chunk's ids (`pd.util.hash_array`) and their lines."""
        self._hashes.append(hashes)
        self._lines.append(lines)

    def errors(self, path: Path, required: tuple[str, ...]) -> list[RowError]:
        """One error per repeated id, naming the line of its first occurrence."""
        if not self._hashes:
            return []
        hashes, lines = np.concatenate(self._hashes), np.concatenate(self._lines)
        order = np.argsort(hashes, kind="stable")
        same = hashes[order][1:] == hashes[order][:-1]
        if not same.any():
            return []
        candidates = set(lines[order[1:][same]].tolist()) | set(lines[order[:-1][same]].tolist())
        ids: dict[int, str] = {}
        for chunk in csv_chunks(path, required):
            wanted = np.isin(chunk.lines, list(candidates))
            found = chunk.frame["external_id"].to_numpy()[wanted].tolist()
            ids.update(zip(chunk.lines[wanted].tolist(), found, strict=True))
        first: dict[str, int] = {}
        errors = []
        for line in sorted(ids):
            external_id = ids[line]
            if external_id in first:
                errors.append(
                    RowError(
                        line,
                        f"duplicate external_id {external_id!r} (first on line {first[external_id]})",
                    )
                )
            else:
                first[external_id] = line
        return errors
