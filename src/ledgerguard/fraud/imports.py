"""Bulk imports into the primary: transactions and fraud labels from CSV files.

Policy (both imports): a file is loaded whole or not at all. Every row is validated first; any
bad row refuses the file with `ImportRejected`, which lists the bad rows by line number (line 1
is the header). The rows are then written in ONE database transaction, so a failure half-way
(server gone, disk full) leaves nothing behind either. Importing the same file again is a no-op:
transactions whose `external_id` is already stored are skipped (not compared; counted as
`skipped`), labels are upserted.

Transactions (`external_id,user_id,terminal_id,amount,currency,occurred_at`):
* `external_id` 1-64 characters without control characters, unique in the file;
* `user_id` a positive integer; `terminal_id` a non-negative integer or empty;
* `amount` a plain decimal (`15000.00`), valid for the currency by `money.check_amount`
  (positive, at most the currency's decimals, at most 10^12);
* `currency` an active ISO 4217 code in upper case;
* `occurred_at` ISO 8601; a value without an offset is taken as UTC.
`amount_usd` is computed at the ECB rate of the UTC date (`FxRates.to_usd`), NULL for currencies
the ECB does not publish; `created_at` is the import time.

Fast path: `LOAD DATA LOCAL INFILE` of validated tab-separated chunks (the server parses, one
statement per 200,000 rows, all in one transaction); when the server refuses LOCAL, multi-row
INSERTs of 5,000 rows in one transaction. `method` forces either.

Labels (`external_id,is_fraud[,labelled_at]`, other columns such as `pattern` ignored):
`is_fraud` is 0/1/true/false/yes/no; every `external_id` must name a stored transaction.

Field checks live in `ledgerguard.fraud.validation`.
"""

from __future__ import annotations

import csv
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pymysql
import sqlalchemy as sa

from ledgerguard.fraud.errors import ImportRejected, RowError
from ledgerguard.fraud.fx import units_to_decimal, usd_units
from ledgerguard.fraud.store import transaction_ids_by_external, upsert_labels, writer_engine
from ledgerguard.fraud.validation import (
    RowChecks,
    check_external_ids,
    read_csv_rows,
    validate_transactions,
)
from ledgerguard.money import FxRates
from ledgerguard.settings import Settings

TRANSACTION_COLUMNS = ("external_id", "user_id", "terminal_id", "amount", "currency", "occurred_at")
LABEL_COLUMNS = ("external_id", "is_fraud")
LOAD_CHUNK_ROWS = 200_000
INSERT_BATCH_ROWS = 5_000
_DUPLICATE_KEY = 1062
_LOCAL_REFUSED = {1148, 2068, 3948, 4166}

_TRUE = {"1", "true", "yes"}
_FALSE = {"0", "false", "no"}
_DB_COLUMNS = (
    "external_id",
    "user_id",
    "terminal_id",
    "amount",
    "currency",
    "amount_usd",
    "occurred_at",
    "created_at",
)

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
    fx: FxRates | None = None,
) -> ImportResult:
    """Load a transactions CSV into the primary, all or nothing (see module docstring)."""
    began = time.monotonic()
    path = Path(path)
    frame, lines = read_csv_rows(path, TRANSACTION_COLUMNS)
    parsed = validate_transactions(path, frame, lines)
    usd = usd_units(
        parsed["amount_units"].to_numpy(),
        parsed["currency"].to_numpy(),
        parsed["ts_us"].to_numpy(),
        fx or FxRates(),
    )
    created_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    table = pd.DataFrame(
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
    )
    engine = writer_engine(settings, local_infile=True)
    try:
        inserted, used = _load(engine, table, method, progress)
    finally:
        engine.dispose()
    return ImportResult(
        rows=len(table),
        inserted=inserted,
        skipped=len(table) - inserted,
        seconds=round(time.monotonic() - began, 3),
        method=used,
    )


def _usd_strings(parsed: pd.DataFrame, usd: np.ndarray) -> pd.Series:
    """`amount_usd` as decimal strings (None when unknown); USD rows are their own amount."""
    out = parsed["amount"].copy()
    foreign = np.flatnonzero(parsed["currency"].to_numpy() != "USD")
    out.iloc[foreign] = [str(units_to_decimal(u)) if u >= 0 else None for u in usd[foreign]]
    return out


def _load(
    engine: sa.Engine, table: pd.DataFrame, method: str, progress: Progress | None
) -> tuple[int, str]:
    connection: Any = engine.raw_connection()
    try:
        if method in ("auto", "load_data"):
            try:
                inserted = _load_data(connection, table, progress)
                connection.commit()
                return inserted, "load_data"
            except pymysql.err.MySQLError as exc:
                connection.rollback()
                if method == "load_data" or exc.args[0] not in _LOCAL_REFUSED:
                    raise
        inserted = _insert(connection, table, progress)
        connection.commit()
        return inserted, "insert"
    except BaseException:
        connection.rollback()
        raise
    finally:
        connection.close()


def _load_data(connection: Any, table: pd.DataFrame, progress: Progress | None) -> int:
    """LOAD DATA LOCAL INFILE per chunk; LOCAL turns duplicate keys into skipped rows."""
    statement = (
        "LOAD DATA LOCAL INFILE %s INTO TABLE transactions CHARACTER SET utf8mb4 "
        "FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' "
        f"({', '.join(_DB_COLUMNS)})"
    )
    inserted = 0
    with tempfile.TemporaryDirectory(prefix="ledgerguard-import-") as directory:
        for offset in range(0, len(table), LOAD_CHUNK_ROWS):
            chunk = table.iloc[offset : offset + LOAD_CHUNK_ROWS]
            chunk_path = Path(directory) / f"chunk-{offset}.tsv"
            escaped = chunk.assign(
                external_id=chunk["external_id"].str.replace("\\", "\\\\", regex=False)
            )
            escaped.to_csv(
                chunk_path,
                sep="\t",
                header=False,
                index=False,
                na_rep="\\N",
                quoting=csv.QUOTE_NONE,
                escapechar=None,
                lineterminator="\n",
            )
            with connection.cursor() as cursor:
                cursor.execute(statement, (str(chunk_path),))
                inserted += cursor.rowcount
                cursor.execute("SHOW WARNINGS")
                unexpected = [w for w in cursor.fetchall() if w[1] != _DUPLICATE_KEY]
            if unexpected:
                raise ImportRejected(
                    "LOAD DATA", [RowError(0, f"server warning {w[1]}: {w[2]}") for w in unexpected]
                )
            if progress is not None:
                progress(min(offset + LOAD_CHUNK_ROWS, len(table)), len(table))
    return inserted


def _insert(connection: Any, table: pd.DataFrame, progress: Progress | None) -> int:
    """Multi-row INSERTs; an existing external_id leaves its row untouched (0 affected rows)."""
    head = f"INSERT INTO transactions ({', '.join(_DB_COLUMNS)}) VALUES "
    tail = " ON DUPLICATE KEY UPDATE id = id"
    escape = connection.escape
    inserted = 0
    with connection.cursor() as cursor:
        for offset in range(0, len(table), INSERT_BATCH_ROWS):
            chunk = table.iloc[offset : offset + INSERT_BATCH_ROWS]
            values = ",".join(
                "(" + ",".join(escape(value) for value in row) + ")"
                for row in chunk.itertuples(index=False, name=None)
            )
            cursor.execute(head + values + tail)
            inserted += cursor.rowcount
            if progress is not None:
                progress(min(offset + INSERT_BATCH_ROWS, len(table)), len(table))
    return inserted


def import_labels(
    settings: Settings, path: Path, *, source: str = "import", progress: Progress | None = None
) -> LabelImportResult:
    """Upsert fraud labels from a CSV into `fraud_labels`, all or nothing (see module docstring)."""
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
        labelled_at = [now if pd.isna(t) else t.to_pydatetime() for t in labelled]
    else:
        labelled_at = [now] * len(frame)
    engine = writer_engine(settings)
    try:
        with engine.begin() as conn:
            ids = transaction_ids_by_external(conn, frame["external_id"].tolist())
            known = frame["external_id"].isin(ids.keys()).to_numpy()
            checks.fail(
                ~known, lambda i: f"no transaction with external_id {frame['external_id'].iat[i]!r}"
            )
            checks.raise_if_any(path)
            is_fraud = flag.isin(_TRUE).to_numpy()
            rows = [
                {
                    "transaction_id": ids[external_id],
                    "external_id": external_id,
                    "is_fraud": bool(fraud),
                    "labelled_at": moment,
                    "source": source,
                }
                for external_id, fraud, moment in zip(
                    frame["external_id"], is_fraud, labelled_at, strict=True
                )
            ]
            upsert_labels(conn, rows)
            if progress is not None:
                progress(len(rows), len(rows))
    finally:
        engine.dispose()
    return LabelImportResult(
        rows=len(rows), fraud=int(is_fraud.sum()), seconds=round(time.monotonic() - began, 3)
    )
