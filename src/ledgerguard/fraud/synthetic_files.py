"""A synthetic data set written as files: the CSV files `ledgerguard generate` leaves behind.

`write_dataset` writes a `SyntheticData` (`fraud.synthetic.generate`) as CSV: the transactions
in the import format and the labels with the moment each became known (what the importers
read), and the pattern instances (events) an evaluation can be checked against. Writing is apart
from drawing the data because its concerns are the files' (column order, ISO 8601 UTC times
with microseconds, bare newlines, chunks of `WRITE_CHUNK_ROWS` for progress), not the draws';
the same data set gives the same bytes.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from ledgerguard.fraud.synthetic import Progress, SyntheticData, no_progress

TRANSACTION_COLUMNS = ("external_id", "user_id", "terminal_id", "amount", "currency", "occurred_at")
LABEL_COLUMNS = ("external_id", "is_fraud", "pattern", "labelled_at")
EVENT_COLUMNS = ("pattern", "user_id", "terminal_id", "start", "end")
#: Rows per `to_csv` call of `write_dataset` (what one progress step covers).
WRITE_CHUNK_ROWS = 500_000


def write_dataset(
    data: SyntheticData,
    directory: Path,
    *,
    name: str = "synthetic",
    progress: Progress = no_progress,
) -> tuple[Path, Path]:
    """Write `<name>_transactions.csv` (import format), `<name>_labels.csv` and
    `<name>_events.csv` (the pattern instances with start and end); returns the first two.

    The transactions and labels are written `WRITE_CHUNK_ROWS` at a time, each chunk told to
    `progress(rows written, both files' rows)`."""
    directory.mkdir(parents=True, exist_ok=True)
    tx_path = directory / f"{name}_transactions.csv"
    labels_path = directory / f"{name}_labels.csv"
    data.events.assign(start=_iso(data.events["start"]), end=_iso(data.events["end"])).to_csv(
        directory / f"{name}_events.csv",
        index=False,
        columns=list(EVENT_COLUMNS),
        lineterminator="\n",
    )
    total = len(data.transactions) + len(data.labels)
    written = 0
    progress(written, total)
    for frame, path, columns, moment in (
        (data.transactions, tx_path, TRANSACTION_COLUMNS, "occurred_at"),
        (data.labels, labels_path, LABEL_COLUMNS, "labelled_at"),
    ):
        for offset in range(0, max(len(frame), 1), WRITE_CHUNK_ROWS):
            chunk = frame.iloc[offset : offset + WRITE_CHUNK_ROWS]
            chunk.assign(**{moment: _iso(chunk[moment])}).to_csv(
                path,
                mode="w" if offset == 0 else "a",
                header=offset == 0,
                index=False,
                columns=list(columns),
                lineterminator="\n",
                quoting=csv.QUOTE_MINIMAL,
            )
            written += len(chunk)
            progress(written, total)
    return tx_path, labels_path


def _iso(moments: pd.Series) -> pd.Series:
    return moments.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
