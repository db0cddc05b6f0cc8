"""Checking and converting a transactions file for the importer, chunk by chunk.

`checked_chunks` yields every chunk of the file checked (`validation.check_transactions`),
hashed for the duplicate check, and, while no bad row has been seen, converted to the table's
columns and written as a LOAD DATA file. A file of more than one chunk is checked in a child
process, on the other core, fully apart from the loader: in a thread of the same process the
two would share the interpreter lock, and pymysql sends a LOAD DATA LOCAL file in 16 KiB
packets, each of which needs it. Measured at 1M rows, 18.7 s with a thread and 18.6 s with the
process: at that size the server is the limit either way (LOAD DATA alone ~14.5 s per 1M rows
into these five indexes; checking 7.7 s), so the process buys headroom rather than speed.
"""

from __future__ import annotations

import multiprocessing
import queue
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ledgerguard.fraud.engine.fx import usd_units
from ledgerguard.fraud.errors import RowError
from ledgerguard.fraud.imports.bulk_load import tsv_text
from ledgerguard.fraud.imports.csv_rows import CHUNK_ROWS, csv_chunks
from ledgerguard.fraud.imports.validation import check_transactions
from ledgerguard.money import FxRates

TRANSACTION_COLUMNS = ("external_id", "user_id", "terminal_id", "amount", "currency", "occurred_at")
#: Columns of `transactions` written by an import, in the order of the chunk files.
DB_COLUMNS = (
    "external_id",
    "user_id",
    "terminal_id",
    "amount",
    "currency",
    "amount_usd",
    "occurred_at",
    "created_at",
)
_QUEUED_CHUNKS = 2  # chunk files ahead of the loader (~17 MiB each at 250k rows)


@dataclass(frozen=True)
class CheckedChunk:
    rows: int  # data rows of the chunk, bad ones included
    errors: list[RowError]
    hashes: np.ndarray  # of each external id (`validation.DuplicateIds`)
    lines: np.ndarray
    tsv: Path | None  # the chunk's LOAD DATA file; None once the file has a bad row


def checked_chunks(
    path: Path, directory: Path, created_at: str, *, chunk_rows: int = CHUNK_ROWS
) -> Iterator[CheckedChunk]:
    """Every chunk of `path` checked; in a child process when the file has several chunks."""
    if data_lines(path) <= chunk_rows:
        yield from _check(path, directory, created_at, chunk_rows)
        return
    context = multiprocessing.get_context("spawn")
    out: Any = context.Queue(maxsize=_QUEUED_CHUNKS)
    child = context.Process(
        target=_check_into,
        args=(path, directory, created_at, chunk_rows, out),
        name="ledgerguard-import-check",
        daemon=True,
    )
    child.start()
    try:
        while True:
            try:
                kind, value = out.get(timeout=1.0)
            except queue.Empty:
                if child.is_alive():
                    continue
                raise RuntimeError(
                    f"the import's checking process ended unexpectedly (exit code {child.exitcode})"
                ) from None
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        if child.is_alive():
            child.terminate()
        child.join()


def _check_into(path: Path, directory: Path, created_at: str, chunk_rows: int, out: Any) -> None:
    """The child process: `_check` into a queue, then "end" (or the error)."""
    try:
        for chunk in _check(path, directory, created_at, chunk_rows):
            out.put(("chunk", chunk))
        out.put(("end", None))
    except Exception as exc:  # noqa: BLE001 -- re-raised by the parent
        out.put(("error", exc))


def _check(path: Path, directory: Path, created_at: str, chunk_rows: int) -> Iterator[CheckedChunk]:
    fx = FxRates()
    failed = False
    for number, chunk in enumerate(csv_chunks(path, TRANSACTION_COLUMNS, chunk_rows)):
        parsed, bad = check_transactions(chunk.frame, chunk.lines)
        errors = chunk.errors + bad
        failed = failed or bool(errors)
        tsv = None
        if not failed and parsed is not None and len(parsed):
            tsv = directory / f"chunk-{number}.tsv"
            tsv.write_text(tsv_text(db_rows(parsed, fx, created_at)), encoding="utf-8")
        hashes = pd.util.hash_array(chunk.frame["external_id"].to_numpy(dtype=object))
        yield CheckedChunk(len(chunk.frame) + len(chunk.errors), errors, hashes, chunk.lines, tsv)


def data_lines(path: Path) -> int:
    """Lines after the header (blank lines and quoted line breaks count too)."""
    lines = 0
    with path.open("rb") as handle:
        while block := handle.read(1 << 24):
            lines += block.count(b"\n")
    return max(lines - 1, 0)


def db_rows(parsed: pd.DataFrame, fx: FxRates, created_at: str) -> pd.DataFrame:
    """The `DB_COLUMNS` of a checked chunk, as strings (None for NULL)."""
    usd = usd_units(
        parsed["amount_units"].to_numpy(),
        parsed["currency"].to_numpy(),
        parsed["ts_us"].to_numpy(),
        fx,
    )
    return pd.DataFrame(
        {
            "external_id": parsed["external_id"],
            "user_id": parsed["user_id"].astype(str),
            "terminal_id": parsed["terminal_id"].where(parsed["terminal_id"] != "", None),
            "amount": parsed["amount"],
            "currency": parsed["currency"],
            "amount_usd": _usd_strings(parsed, usd),
            "occurred_at": parsed["occurred_at"],
            "created_at": created_at,
        }
    )[list(DB_COLUMNS)]


def _usd_strings(parsed: pd.DataFrame, usd: np.ndarray) -> pd.Series:
    """`amount_usd` as decimal strings (None when unknown); USD rows are their own amount."""
    out = parsed["amount"].to_numpy(dtype=object).copy()
    foreign = np.flatnonzero(parsed["currency"].to_numpy() != "USD")
    units = usd[foreign]
    whole = pd.Series(units // 10_000).astype(str)
    fraction = pd.Series(units % 10_000).astype(str).str.zfill(4)
    text = (whole + "." + fraction).to_numpy(dtype=object)
    out[foreign] = np.where(units >= 0, text, None)
    return pd.Series(out, index=parsed.index)
