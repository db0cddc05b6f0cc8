"""The columns of a stored verdict and how each is rendered: one home for every verdict writer.

A verdict frame (`scoring.VERDICT_COLUMNS`: ids, `ts_us`, money in exact 10^-4 units, the
score, ...) becomes a `fraud_scores` row (and its narrow `realtime_verdicts` part) in three
renderings, all built here from the one column list `COLUMNS`:

- `verdict_values`: Python values (Decimal money, timezone-aware UTC datetimes, None for NULL),
  what `store.verdict_rows` zips into dicts (alerts, SQLAlchemy);
- `verdict_literals`: SQL literal text, what `store.upsert_rows` joins into multi-row upserts
  (the real-time scorer's and the nightly run's: pymysql's `executemany` would make four
  Python calls per value, the nightly run's largest cost in Python at 13.4M rows).

Every rendering works column by column on the frame's arrays, never per row and column: in the
scorer a Python object per value costs more than scoring the row. A verdict's own columns come
from its frame (`COLUMNS`); the others are the write's (`WRITE_COLUMNS`: its interval, time and
source), plus the two times only `realtime_verdicts` has (`REALTIME_TIME_COLUMNS`). A real-time
verdict has no interval: its interval is its UTC day (`DAY_INTERVAL`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from ledgerguard.fraud.engine.fx import units_to_decimal
from ledgerguard.fraud.engine.windows import SECONDS_PER_DAY, US_PER_SECOND
from ledgerguard.utc import from_us, utc_naive

#: `literal` of the connection (its `escape`): a quoted SQL string.
Quote = Callable[[str], str]
#: A column of strings (None or NaN for NULL) as SQL literals.
Strings = Callable[[list[Any]], list[str]]
_US_PER_DAY = SECONDS_PER_DAY * US_PER_SECOND


@dataclass(frozen=True)
class Rendering:
    """How one kind of column becomes Python values and SQL literals, a whole column at once.
    `values` and `literals` get the column (a Series or an array) and, for literals, the
    batch's `Strings`, which quotes each distinct string once."""

    values: Callable[[Any], list[Any]]
    literals: Callable[[Any, Strings], list[str]]


def _array(column: Any, dtype: Any = None) -> np.ndarray:
    """The column's numpy array (a Series' `to_numpy`: `np.asarray` on a Series costs pandas'
    attribute look-ups, a measurable share of a narrow batch)."""
    if isinstance(column, pd.Series):
        return column.to_numpy(dtype=dtype)
    return column if dtype is None else column.astype(dtype, copy=False)


def datetime_literals(ts_us: np.ndarray) -> list[str]:
    """Quoted naive UTC `YYYY-MM-DD HH:MM:SS.ffffff` of microseconds since the epoch (each
    string edit made once on the column joined, not per value)."""
    text = np.datetime_as_string(ts_us.astype("datetime64[us]"), unit="us").tolist()
    return _quoted("\0".join(text).replace("T", " "), len(text))


def _quoted(joined: str, count: int) -> list[str]:
    """`count` NUL-separated values, each in single quotes (values without quotes or NULs)."""
    if not count:
        return []
    return ("'" + joined.replace("\0", "'\0'") + "'").split("\0")


def _units_literals(units: np.ndarray) -> list[str]:
    """10^-4 units as DECIMAL literals with 4 places (`units_to_decimal`'s value)."""
    magnitude = np.abs(units)
    texts = list(
        map("{}.{:04d}".format, (magnitude // 10_000).tolist(), (magnitude % 10_000).tolist())
    )
    if (units < 0).any():
        texts = [
            "-" + text if value < 0 else text
            for text, value in zip(texts, units.tolist(), strict=True)
        ]
    return texts


def _known_usd_literals(units: Any, strings: Strings) -> list[str]:
    usd = _array(units, np.int64)
    return [
        text if known else "NULL"
        for text, known in zip(_units_literals(usd), (usd >= 0).tolist(), strict=True)
    ]


def _text_literals(column: Any, strings: Strings) -> list[str]:
    return strings(column.tolist())


INTEGER = Rendering(
    values=lambda column: column.astype("int64").tolist(),
    literals=lambda column, strings: list(map(str, _array(column).tolist())),
)
#: microseconds since the epoch, UTC
TIME = Rendering(
    values=lambda column: [from_us(ts_us) for ts_us in column.tolist()],
    literals=lambda column, strings: datetime_literals(_array(column, np.int64)),
)


def _distinct_times(column: Any) -> list[datetime]:
    """`TIME`'s values of a column with few distinct ones (days): each converted once."""
    values = column.tolist()
    times = {ts_us: from_us(ts_us) for ts_us in dict.fromkeys(values)}
    return list(map(times.__getitem__, values))


#: microseconds since the epoch of whole days (a batch holds a few distinct ones)
DAY = Rendering(values=_distinct_times, literals=TIME.literals)
#: exact 10^-4 units
MONEY = Rendering(
    values=lambda column: [units_to_decimal(units) for units in column.tolist()],
    literals=lambda column, strings: _units_literals(_array(column, np.int64)),
)
#: exact 10^-4 units, negative where unknown (NULL)
KNOWN_MONEY = Rendering(
    values=lambda column: [
        units_to_decimal(units) if units >= 0 else None for units in column.tolist()
    ],
    literals=_known_usd_literals,
)
#: the score, stored with 4 places
SCORE = Rendering(
    values=lambda column: [Decimal(f"{score:.4f}") for score in column.tolist()],
    literals=lambda column, strings: list(map("{:.4f}".format, _array(column, float).tolist())),
)
FLAG = Rendering(
    values=lambda column: [bool(flag) for flag in column.tolist()],
    literals=lambda column, strings: [
        "1" if flag else "0" for flag in _array(column, bool).tolist()
    ],
)
TEXT = Rendering(values=lambda column: column.tolist(), literals=_text_literals)
#: text or NULL (pandas may hold None as NaN in a column of strings)
TEXT_OR_NULL = Rendering(
    values=lambda column: [value if isinstance(value, str) else None for value in column.tolist()],
    literals=_text_literals,
)


@dataclass(frozen=True)
class VerdictColumn:
    """A stored column of a verdict: its name, where its values come from in the verdict
    frame, and its rendering."""

    name: str
    source: Callable[[pd.DataFrame], Any]
    rendering: Rendering

    def values(self, verdicts: pd.DataFrame) -> list[Any]:
        return self.rendering.values(self.source(verdicts))

    def literals(self, verdicts: pd.DataFrame, strings: Strings) -> list[str]:
        return self.rendering.literals(self.source(verdicts), strings)


def _frame(name: str) -> Callable[[pd.DataFrame], pd.Series]:
    return lambda verdicts: verdicts[name]


def _day_us(verdicts: pd.DataFrame) -> np.ndarray:
    ts_us = verdicts["ts_us"].to_numpy(dtype=np.int64)
    return ts_us - ts_us % _US_PER_DAY


#: A verdict's own columns, from its frame, in `fraud_scores` order.
COLUMNS: tuple[VerdictColumn, ...] = (
    VerdictColumn("transaction_id", _frame("transaction_id"), INTEGER),
    VerdictColumn("user_id", _frame("user_id"), INTEGER),
    VerdictColumn("occurred_at", _frame("ts_us"), TIME),
    VerdictColumn("amount", _frame("amount_units"), MONEY),
    VerdictColumn("currency", _frame("currency"), TEXT),
    VerdictColumn("amount_usd", _frame("usd_units"), KNOWN_MONEY),
    VerdictColumn("score", _frame("score"), SCORE),
    VerdictColumn("flagged", _frame("flagged"), FLAG),
    VerdictColumn("rule_ids", _frame("rule_ids"), TEXT),
    VerdictColumn("reasons", _frame("reasons"), TEXT),
    # the model store version that scored the row; NULL: the rules alone
    VerdictColumn("model_version", _frame("model_version"), TEXT_OR_NULL),
)
#: The interval of a verdict that has none (the streaming scorer's): its UTC day.
DAY_INTERVAL: tuple[VerdictColumn, ...] = (
    VerdictColumn("interval_start", _day_us, DAY),
    VerdictColumn("interval_end", lambda verdicts: _day_us(verdicts) + _US_PER_DAY, DAY),
)
#: The columns of `fraud_scores` that each write sets for all its verdicts.
WRITE_COLUMNS = ("interval_start", "interval_end", "analysed_at", "source")
#: The write time columns only `realtime_verdicts` has.
REALTIME_TIME_COLUMNS = ("scored_at", "first_scored_at")


def verdict_values(verdicts: pd.DataFrame, *, day_interval: bool = False) -> dict[str, list[Any]]:
    """Every verdict column as Python values, column by column (`day_interval`: also the
    interval columns, each verdict's UTC day)."""
    columns = COLUMNS + DAY_INTERVAL if day_interval else COLUMNS
    return {column.name: column.values(verdicts) for column in columns}


def verdict_literals(
    verdicts: pd.DataFrame,
    now: datetime,
    literal: Quote,
    names: tuple[str, ...] | None = None,
    *,
    source: str = "realtime",
    interval: tuple[datetime, datetime] | None = None,
) -> dict[str, list[str]]:
    """The `names` columns (default: all) of the verdicts' rows as SQL literals, column by
    column: the `fraud_scores` columns and the `realtime_verdicts` ones.

    The values `store.verdict_rows` gives with `source` and the write time `now` in every
    write time column; the interval is `interval` (the nightly run's), or without one each
    verdict's UTC day (the real-time scorer's). Datetimes are written as the naive UTC text
    `UTCDateTime` binds, `literal` (the connection's `escape`) quotes strings. Only the
    columns asked for are built: the narrow table's need no time or money conversion.
    """
    n = len(verdicts)
    texts: dict[Any, str] = {}

    def strings(values: list[Any]) -> list[str]:
        # a batch repeats most of them ("USD", "", the same rule ids): each distinct value is
        # quoted once, None (or pandas' missing value) is NULL
        for value in dict.fromkeys(values):
            if value not in texts:
                texts[value] = literal(value) if isinstance(value, str) else "NULL"
        return list(map(texts.__getitem__, values))

    def moment(value: datetime) -> str:
        return "'" + utc_naive(value).isoformat(" ", "microseconds") + "'"

    builders: dict[str, Callable[[], list[str]]] = {
        column.name: (lambda column=column: column.literals(verdicts, strings))
        for column in COLUMNS + DAY_INTERVAL
    }
    if interval is not None:
        for name, bound in zip(("interval_start", "interval_end"), interval, strict=True):
            builders[name] = lambda bound=bound: [moment(bound)] * n
    builders["source"] = lambda: [literal(source)] * n
    for name in ("analysed_at", *REALTIME_TIME_COLUMNS):
        builders[name] = lambda: [moment(now)] * n
    return {name: builders[name]() for name in (names or tuple(builders))}
