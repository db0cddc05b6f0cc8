"""How the replica's rows travel: as text of integers, split by C parsers, not by the driver.

The pure-Python driver costs about a microsecond per column value, so the replica's reads
(`fraud.reader`, `fraud.terminal_tables`) have the server send each row as one comma-separated
text value of integers (money in exact 10^-4 units, time in microseconds since the epoch, days
since 1970-01-01 as `TO_DAYS(...) - EPOCH_DAYS`) and pandas' C parser (or NumPy) splits them:
roughly twice as fast as fetching the columns one by one. This module is what those reads share
of that format: the day offset and the parse into typed columns.
"""

from __future__ import annotations

import io
from typing import Any

import pandas as pd

EPOCH_DAYS = 719_528  # TO_DAYS('1970-01-01')


def csv_frame(
    cursor: Any, sql: str, args: tuple[Any, ...], names: list[str], dtypes: dict[str, str]
) -> pd.DataFrame:
    """Rows of one CSV text column parsed by pandas' C parser into typed columns.

    The text goes into one UTF-8 byte buffer as it arrives (the SSCursor holds only 50,000 rows
    at a time): a list of chunks joined into one `str` and wrapped in a `StringIO` held the text
    two to four times over (StringIO stores 4 bytes per character), which made the transient
    peak of a read about five times the size of the frame it produced.
    """
    cursor.execute(sql, args)
    text = io.BytesIO()
    while rows := cursor.fetchmany(50_000):
        text.write("\n".join([row[0] for row in rows]).encode())
        text.write(b"\n")
    return parse_csv(text, names, dtypes)


def parse_csv(text: io.BytesIO, names: list[str], dtypes: dict[str, str]) -> pd.DataFrame:
    """The CSV lines written to `text` as typed columns (an empty frame for no lines)."""
    if not text.tell():
        return pd.DataFrame({name: pd.Series(dtype=dtypes.get(name, "object")) for name in names})
    text.seek(0)
    return pd.read_csv(text, header=None, names=names, dtype=dtypes, na_filter=False)
