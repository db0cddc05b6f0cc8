"""Bulk imports into the primary: transactions and fraud labels from CSV files.

Policy (both imports): a file is loaded whole or not at all. Any bad row refuses the file with
`ImportRejected`, which lists every bad row by line number (line 1 is the header). All rows
are written in ONE database transaction, committed only after the last row was checked, so a
bad row late in the file, or a failure half-way (server gone, disk full), leaves nothing
behind. Importing the same file again is a no-op: transactions whose `external_id` is already
stored are skipped (not compared; counted as `skipped`), labels are upserted.

Transactions (`external_id,user_id,terminal_id,amount,currency,occurred_at`):
* `external_id` 1-64 characters without control characters, unique in the file;
* `user_id` a positive integer; `terminal_id` a non-negative integer or empty;
* `amount` a plain decimal (`15000.00`), valid for the currency by `money.check_amount`
  (positive, at most the currency's decimals, at most 10^12);
* `currency` an active ISO 4217 code in upper case;
* `occurred_at` ISO 8601; a value without an offset is taken as UTC.
`amount_usd` is computed at the ECB rate of the UTC date (`FxRates.to_usd`), NULL for currencies
the ECB does not publish; `created_at` is the import time.

Fast path: the file is streamed in chunks of 250,000 rows (memory bounded by the chunk, not the
file). A child process checks and converts chunk k+1 (`import_check.checked_chunks`) while this
process loads chunk k (`bulk_load.ChunkLoader`: `LOAD DATA LOCAL INFILE`, or multi-row INSERTs
when the server refuses LOCAL; `method` forces either), so the client's work and the server's
overlap on two cores. Once a bad row is found nothing more is sent, the rest of the file is
still checked (so the error lists every bad row), and the transaction is rolled back. Duplicate
external ids are found across the whole file (`validation.DuplicateIds`).

Labels (`external_id,is_fraud[,labelled_at]`, other columns such as `pattern` ignored):
`is_fraud` is 0/1/true/false/yes/no; every `external_id` must name a stored transaction;
`labelled_at` (empty: the import time) is in the API's range, like `occurred_at`.

Reading the file lives in `ledgerguard.fraud.imports.csv_rows`, field checks in
`ledgerguard.fraud.imports.validation`.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ledgerguard.db.engines import bulk_load_engine, writer_engine
from ledgerguard.fraud.errors import ImportRejected, RowError
from ledgerguard.fraud.imports.bulk_load import ChunkLoader
from ledgerguard.fraud.imports.check import (
    DB_COLUMNS,
    TRANSACTION_COLUMNS,
    checked_chunks,
    data_lines,
)
from ledgerguard.fraud.imports.csv_rows import CHUNK_ROWS, read_csv_rows
from ledgerguard.fraud.imports.validation import (
    DuplicateIds,
    RowChecks,
    check_external_ids,
    check_moment_range,
)
from ledgerguard.fraud.store import LabelColumns, transaction_ids_by_external, upsert_labels
from ledgerguard.settings import Settings
from ledgerguard.utc import to_us

LABEL_COLUMNS = ("external_id", "is_fraud")

_TRUE = {"1", "true", "yes"}
_FALSE = {"0", "false", "no"}
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ImportResult:
    rows: int  # data rows in the file
    inserted: int
    skipped: int  # external_id already stored
    seconds: float
    method: str

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else float("inf")


@dataclass(frozen=True)
class LabelImportResult:
    rows: int
    fraud: int
    seconds: float


def import_transactions(
    settings: Settings,
    path: Path,
    progress: Progress | None = None,
    *,
    method: Literal["auto", "load_data", "insert"] = "auto",
    chunk_rows: int = CHUNK_ROWS,
) -> ImportResult:
    """Load a transactions CSV into the primary, all or nothing (see module docstring).

    `progress(done, total)` counts rows checked; `total` is the file's line count until the
    last call, which gives the exact number of rows.
    """
    began = time.monotonic()
    path = Path(path)
    total = data_lines(path)
    created_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    errors: list[RowError] = []
    seen = DuplicateIds()
    rows = 0
    engine = bulk_load_engine(settings)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="ledgerguard-import-") as directory,
            ChunkLoader(engine, "transactions", DB_COLUMNS, method) as loader,
        ):
            for chunk in checked_chunks(path, Path(directory), created_at, chunk_rows=chunk_rows):
                errors += chunk.errors
                seen.add(chunk.hashes, chunk.lines)
                rows += chunk.rows
                if chunk.tsv is not None:
                    if not errors:
                        loader.load(chunk.tsv)
                    chunk.tsv.unlink()
                if progress is not None:
                    progress(rows, max(rows, total))
            errors += seen.errors(path, TRANSACTION_COLUMNS)
            if errors:
                raise ImportRejected(str(path), sorted(errors, key=lambda error: error.line))
            inserted = loader.finish()
    finally:
        engine.dispose()
    if progress is not None:
        progress(rows, rows)
    return ImportResult(
        rows=rows,
        inserted=inserted,
        skipped=rows - inserted,
        seconds=round(time.monotonic() - began, 3),
        method=loader.method,
    )


def import_labels(
    settings: Settings, path: Path, *, source: str = "import", progress: Progress | None = None
) -> LabelImportResult:
    """Upsert fraud labels from a CSV into `fraud_labels`, all or nothing (see module docstring).

    `progress(done, total)` runs over twice the rows: the ids are looked up, then stored.
    """
    began = time.monotonic()
    path = Path(path)
    frame, lines = read_csv_rows(path, LABEL_COLUMNS)
    checks = RowChecks(lines)
    check_external_ids(frame, checks)
    flag = frame["is_fraud"].str.strip().str.lower()
    checks.fail(
        ~flag.isin(_TRUE | _FALSE).to_numpy(),
        lambda i: f"is_fraud {frame['is_fraud'].iat[i]!r} must be 0 or 1",
    )
    now = datetime.now(UTC)
    if "labelled_at" in frame:
        labelled = pd.to_datetime(
            frame["labelled_at"].replace("", None), utc=True, format="ISO8601", errors="coerce"
        )
        checks.fail(
            (labelled.isna() & frame["labelled_at"].ne("")).to_numpy(),
            "labelled_at is not an ISO 8601 date-time",
        )
        check_moment_range(frame, "labelled_at", labelled, checks)
        # whole columns (a Timestamp per row cost seconds per million labels); none: now
        known = labelled.dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
        labelled_at_us = np.where(np.isnat(known), to_us(now), known.astype(np.int64))
    else:
        labelled_at_us = np.full(len(frame), to_us(now), dtype=np.int64)
    external_ids = frame["external_id"].tolist()
    engine = writer_engine(settings)
    connection = engine.raw_connection()
    try:
        with connection.cursor() as cursor:
            rows = len(external_ids)
            ids = transaction_ids_by_external(
                cursor, external_ids, None if progress is None else lambda n: progress(n, 2 * rows)
            )
            checks.fail(ids < 0, lambda i: f"no transaction with external_id {external_ids[i]!r}")
            checks.raise_if_any(path)
            is_fraud = flag.isin(_TRUE).to_numpy()
            upsert_labels(
                cursor,
                LabelColumns(
                    transaction_id=ids,
                    external_id=external_ids,
                    is_fraud=is_fraud,
                    labelled_at_us=labelled_at_us,
                    source=source,
                ),
                None if progress is None else lambda n: progress(rows + n, 2 * rows),
            )
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    finally:
        connection.close()
        engine.dispose()
    return LabelImportResult(
        rows=rows, fraud=int(is_fraud.sum()), seconds=round(time.monotonic() - began, 3)
    )
