"""Validation of imported CSV files: every bad row, by line number, before anything is kept.

`csv_chunks` reads a file in chunks of rows (memory bounded by the chunk, not the file), checks
the header and the field count of every line and yields the rows as strings with their line
numbers (line 1 is the header). `check_transactions` checks every field of a chunk and returns
the parsed columns plus the bad rows; `read_csv_rows` / `validate_transactions` are the
whole-file forms. See `ledgerguard.fraud.imports.importer` for the rules and the all-or-nothing policy.

Every check is vectorised; only rows already known to be bad go through Python one by one, to
word their message (the same words as the API's `money.check_amount`).
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
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
from ledgerguard.money import (
    MAX_AMOUNT,
    MoneyError,
    active_currencies,
    check_amount,
    currency_exponent,
)

#: Rows per chunk: ~60 MiB of strings and parsed columns at the synthetic files' widths.
CHUNK_ROWS = 250_000
_INTEGER = r"^[0-9]{1,18}$"
_AMOUNT = r"^[0-9]{1,15}(\.[0-9]{1,4})?$"
_CONTROL = CONTROL_CHARACTERS
#: Amounts travel as integer 10^-4 units of their currency (the scale of DECIMAL(19,4)).
_UNITS = 10_000
_MAX_UNITS = int(MAX_AMOUNT) * _UNITS


@dataclass
class Chunk:
    """Rows of one chunk as strings, their line numbers, and the lines of the wrong width."""

    frame: pd.DataFrame
    lines: np.ndarray
    errors: list[RowError] = field(default_factory=list)


def csv_chunks(
    path: Path, required: tuple[str, ...], chunk_rows: int = CHUNK_ROWS
) -> Iterator[Chunk]:
    """The file's rows in chunks; `ImportRejected` at once for a missing or bad header.

    Lines without quotes (the common case, and what our exports write) are split by pandas' C
    parser, a line being a row. From the first chunk holding a quote or a carriage return on,
    the `csv` module reads the rest, since a quoted field may span lines. Blank lines are
    skipped. A file that is not UTF-8, or a line the `csv` module cannot parse, is refused with
    its line number (`ImportRejected`), never a traceback.
    """
    try:
        yield from _chunks(path, required, chunk_rows)
    except UnicodeDecodeError:
        line = _first_undecodable_line(path)
        raise ImportRejected(
            str(path), [RowError(line, "invalid UTF-8: the file must be UTF-8 encoded")]
        ) from None
    except _LineError as exc:
        raise ImportRejected(str(path), [RowError(exc.line, f"malformed CSV: {exc}")]) from None


class _LineError(ValueError):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def _first_undecodable_line(path: Path) -> int:
    """The number of the first line that is not UTF-8 (slow path: only after a decode error)."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 1


def _chunks(path: Path, required: tuple[str, ...], chunk_rows: int) -> Iterator[Chunk]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        first = handle.readline()
        if not first:
            raise ImportRejected(str(path), [RowError(1, "empty file, expected a header line")])
        if '"' in first or "\r" in first:
            lines = itertools.chain([first], handle)
            yield from _quoted_chunks(path, lines, required, None, 0, chunk_rows)
            return
        header = first.rstrip("\n").split(",")
        _check_header(path, header, required)
        done = 1  # lines read so far
        while block := list(itertools.islice(handle, chunk_rows)):
            text = "".join(block)
            if '"' in text or "\r" in text:
                rest = itertools.chain(block, handle)
                yield from _quoted_chunks(path, rest, required, header, done, chunk_rows)
                return
            yield _plain_chunk(text, header, done)
            done += len(block)


def _plain_chunk(text: str, header: list[str], done: int) -> Chunk:
    rows = text.split("\n")
    if rows[-1] == "":
        rows.pop()
    width = len(header)
    numbers = np.arange(done + 1, done + 1 + len(rows), dtype=np.int64)
    commas = np.fromiter((row.count(",") for row in rows), dtype=np.int64, count=len(rows))
    blank = np.fromiter((row == "" for row in rows), dtype=bool, count=len(rows))
    wrong = ~blank & (commas != width - 1)
    errors = [
        RowError(int(numbers[i]), f"expected {width} fields, found {int(commas[i]) + 1}")
        for i in np.flatnonzero(wrong)
    ]
    keep = ~blank & ~wrong
    body = text if keep.all() else "\n".join(itertools.compress(rows, keep.tolist()))
    if not keep.any():
        frame = pd.DataFrame({name: pd.Series(dtype=object) for name in header})
    else:
        frame = pd.read_csv(
            io.StringIO(body), header=None, names=header, dtype=str, na_filter=False
        ).astype(object)
    return Chunk(frame, numbers[keep], errors)


def _quoted_chunks(
    path: Path,
    lines: Iterable[str],
    required: tuple[str, ...],
    header: list[str] | None,
    done: int,
    chunk_rows: int,
) -> Iterator[Chunk]:
    """Rows read by the `csv` module from `lines` on; `done` lines of the file came before."""
    reader = csv.reader(lines)
    if header is None:
        header = next(reader, None)
        _check_header(path, header, required)
        assert header is not None
    rows: list[list[str]] = []
    numbers: list[int] = []
    errors: list[RowError] = []
    while True:
        try:
            row = next(reader, None)
        except csv.Error as exc:
            raise _LineError(done + reader.line_num, str(exc)) from None
        if row is None:
            break
        if not row:
            continue
        if len(row) != len(header):
            errors.append(
                RowError(done + reader.line_num, f"expected {len(header)} fields, found {len(row)}")
            )
        else:
            rows.append(row)
            numbers.append(done + reader.line_num)
        if len(rows) >= chunk_rows:
            yield Chunk(pd.DataFrame(rows, columns=header, dtype=object), np.array(numbers), errors)
            rows, numbers, errors = [], [], []
    frame = pd.DataFrame(rows, columns=header, dtype=object)
    yield Chunk(frame, np.asarray(numbers, dtype=np.int64), errors)


def read_csv_rows(path: Path, required: tuple[str, ...]) -> tuple[pd.DataFrame, np.ndarray]:
    """All rows of a file at once (small files, labels); `ImportRejected` for bad widths."""
    chunks = list(csv_chunks(path, required))
    errors = [error for chunk in chunks for error in chunk.errors]
    if errors:
        raise ImportRejected(str(path), errors)
    if not chunks:
        _, header = _header_of(path)
        return pd.DataFrame({name: pd.Series(dtype=object) for name in header}), np.zeros(
            0, dtype=np.int64
        )
    frame = pd.concat([chunk.frame for chunk in chunks], ignore_index=True)
    return frame, np.concatenate([chunk.lines for chunk in chunks])


def _header_of(path: Path) -> tuple[str, list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        first = handle.readline()
    return first, next(csv.reader([first]), [])


def _check_header(path: Path, header: list[str] | None, required: tuple[str, ...]) -> None:
    if header is None:
        raise ImportRejected(str(path), [RowError(1, "empty file, expected a header line")])
    if any(name not in header for name in required) or len(set(header)) != len(header):
        raise ImportRejected(
            str(path),
            [RowError(1, f"header must name {', '.join(required)} once each (got {header})")],
        )


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
