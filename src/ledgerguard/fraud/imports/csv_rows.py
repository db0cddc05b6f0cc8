"""Reading imported CSV files: the rows as strings with their line numbers, in bounded chunks.

`csv_chunks` reads a file in chunks of rows (memory bounded by the chunk, not the file), checks
the header and the field count of every line and yields the rows as strings with their line
numbers (line 1 is the header); `read_csv_rows` is the whole-file form (small files, labels).
Apart from `ledgerguard.fraud.imports.validation` because it knows only the CSV layout, not what
a field may hold: the field checks run on what it yields, and a malformed file is refused here,
with its line number, before any field is looked at.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ledgerguard.fraud.errors import ImportRejected, RowError

#: Rows per chunk: ~60 MiB of strings and parsed columns at the synthetic files' widths.
CHUNK_ROWS = 250_000


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
