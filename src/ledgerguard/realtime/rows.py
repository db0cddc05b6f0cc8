"""The kept-row layout of the streaming scorer's state, and the conversions to and from it.

The online state keeps each user's window as a NumPy record array (`ROW_DTYPE`: the columns of
the engine's transaction frame plus the last verdict the scorer gave the row); the engine
scores a pandas transaction frame (`fraud.engine.windows.TX_DTYPES`); the binlog hands over new
rows as column name -> value. This module is where the three meet: `frame_of_inserts` (binlog
inserts -> frame), `rows_from_frame` and `frame_from_rows` (frame <-> kept rows), and a batch's
rows joined with its users' windows (`Merged`, its arrays made by `concatenate` and
`user_time_id_order`).

Its own module because these are formats and array operations, not state: functions of their
arguments only, each tuned for the few milliseconds a batch can spend on it (see their
docstrings), which `state.OnlineState` and the replay benchmark use without the other's
bookkeeping (which users are held, what was last written, what a restart recalled).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from ledgerguard.fraud.engine.windows import SECONDS_PER_DAY, TX_DTYPES, US_PER_SECOND, order_by

#: One kept transaction. `score_e4` is the last verdict's score x 10^4 (-1: not scored by this
#: process, e.g. read from the replica at start-up).
ROW_DTYPE = np.dtype(
    [
        ("transaction_id", "<i8"),
        ("user_id", "<i8"),
        ("terminal_id", "<i8"),
        ("ts_us", "<i8"),
        ("amount_units", "<i8"),
        ("usd_units", "<i8"),
        ("currency", "S3"),
        ("score_e4", "<i4"),
        ("flagged", "?"),
        ("version", "<i4"),
    ]
)


def rows_from_frame(frame: pd.DataFrame) -> np.ndarray:
    """A transaction frame (`TX_DTYPES`) as kept rows, not yet scored."""
    rows = np.zeros(len(frame), dtype=ROW_DTYPE)
    for name in TX_DTYPES:
        values = frame[name].to_numpy()
        rows[name] = values.astype("S3") if name == "currency" else values
    rows["score_e4"] = -1
    rows["version"] = -1
    return rows


def frame_from_rows(rows: np.ndarray) -> pd.DataFrame:
    """Kept rows as the engine's transaction frame."""
    return pd.DataFrame(
        {
            name: _currency_texts(rows[name]) if name == "currency" else rows[name]
            for name in TX_DTYPES
        }
    )


def _currency_texts(codes: np.ndarray) -> pd.Series:
    """`S3` currency codes as the frame's object column of `str`.

    `astype(str).astype(object)` makes a string per row (~2.6 ms for the 9,000 rows of a busy
    batch's windows); a batch holds a handful of currencies, so each distinct code is decoded
    once: the three bytes read as one integer, unique, then looked up.
    """
    as_bytes = np.ascontiguousarray(codes).view(np.uint8).reshape(-1, 3).astype(np.int32)
    number = (as_bytes[:, 0] << 16) | (as_bytes[:, 1] << 8) | as_bytes[:, 2]
    distinct, index = np.unique(number, return_inverse=True)
    texts = np.array(
        [int(code).to_bytes(3, "big").rstrip(b"\0").decode("ascii") for code in distinct.tolist()],
        dtype=object,
    )
    # a Series of dtype object: the frame's constructor would infer pandas' `str` dtype
    return pd.Series(texts[index], dtype=object, copy=False)


def frame_of_inserts(values: list[dict[str, Any]]) -> pd.DataFrame:
    """New `transactions` rows from the binlog (column name -> value) as a transaction frame."""
    epoch = datetime(1970, 1, 1)
    data = {
        "transaction_id": [int(v["id"]) for v in values],
        "user_id": [int(v["user_id"]) for v in values],
        "terminal_id": [
            -1 if v.get("terminal_id") is None else int(v["terminal_id"]) for v in values
        ],
        "ts_us": [_us(v["occurred_at"], epoch) for v in values],
        "amount_units": [int(v["amount"].scaleb(4)) for v in values],
        "usd_units": [
            -1 if v.get("amount_usd") is None else int(v["amount_usd"].scaleb(4)) for v in values
        ],
    }
    # arrays of the frame's dtypes: `DataFrame.astype` per column cost ~7 µs per row
    columns: dict[str, Any] = {name: np.array(data[name], dtype=np.int64) for name in data}
    columns["currency"] = pd.Series(
        np.array([str(v["currency"]) for v in values], dtype=object), dtype=object, copy=False
    )
    return pd.DataFrame(columns)


def _us(moment: datetime, epoch: datetime) -> int:
    """A naive UTC DATETIME(6) value as microseconds since the epoch."""
    delta = moment.replace(tzinfo=None) - epoch
    return (delta.days * SECONDS_PER_DAY + delta.seconds) * US_PER_SECOND + delta.microseconds


def concatenate(parts: list[np.ndarray]) -> np.ndarray:
    """`np.concatenate` of `ROW_DTYPE` arrays, joined as bytes: NumPy works out the common
    type of structured arrays field by field for each part (~50 µs each, a third of the state
    stage with a few hundred users per batch), although here every part has the same."""
    return np.concatenate([np.ascontiguousarray(p).view(np.uint8) for p in parts]).view(ROW_DTYPE)


def user_time_id_order(rows: np.ndarray, users: np.ndarray) -> np.ndarray:
    """The order of `rows` by (user, time, id), `users` being their distinct users, sorted.

    A batch's rows are its users' windows, each already in that order, followed by the new
    rows: one stable sort by (user rank, time) (`order_by`) is ~10x faster than a three-key
    `np.lexsort`. Rows of one user at the same microsecond stay in their positions, which is
    id order unless a new row has a smaller id than a kept one (then `lexsort` decides).
    """
    order = order_by(np.searchsorted(users, rows["user_id"]), rows["ts_us"])
    ts, ids, user = rows["ts_us"][order], rows["transaction_id"][order], rows["user_id"][order]
    tied = (ts[1:] == ts[:-1]) & (user[1:] == user[:-1])
    if (tied & (ids[1:] < ids[:-1])).any():
        return np.lexsort((rows["transaction_id"], rows["ts_us"], rows["user_id"]))
    return order


@dataclass
class Merged:
    """A batch's rows merged into its users' windows (`OnlineState._merge`), nothing stored."""

    #: the users' kept rows and the new ones, sorted by (user, time, id)
    rows: np.ndarray
    #: rows the state did not hold before this batch
    fresh: np.ndarray
    #: rows of the batch itself: the fresh ones and those streamed again (a replay)
    named: np.ndarray
    #: each user's first row and number of rows in `rows`, and newest time
    starts: np.ndarray
    sizes: np.ndarray
    newest_us: np.ndarray

    def per_row(self, values: np.ndarray) -> np.ndarray:
        """A value per user repeated for each of the user's rows."""
        return np.repeat(values, self.sizes)
