"""The replica's terminal tables: what a `TerminalHistory` is built from, read in SQL.

Two tables, the ones `engine.terminal_days` and `engine.terminal_history` make in memory:
transactions and confirmed frauds per (terminal, day), and the confirmed frauds per terminal,
customer and day with the day their labels came. Their reads follow the terminal index and end
as counts, where the pages of `fraud.reader` follow the user index and end as transactions;
`ReplicaReader.terminal_tables` runs them inside its snapshot, on its server-side cursors.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from ledgerguard.fraud.engine.terminal_history import FRAUD_CUSTOMER_COLUMNS, LABELLED_DAY
from ledgerguard.fraud.errors import FraudAnalysisError
from ledgerguard.fraud.replica_text import EPOCH_DAYS, csv_frame
from ledgerguard.utc import utc_naive

#: Days of one terminal in a (terminal, day) key: terminal * this + day offset.
_DAYS_PER_TERMINAL_KEY = 1 << 20
_TERMINAL_DAY_COLS = ("terminal_id", "day", "n_tx")

# Terminal transactions come one row per terminal with the day of each of its transactions as
# text: grouping by `terminal_id` alone follows the (terminal_id, occurred_at) index, so the
# server streams groups without a temporary table, and the (terminal, day) counts are made by
# NumPy. Grouping by (terminal_id, day) on the server needed a temporary table of one row per
# group: at 15.4M rows (3.3M groups) 166 s on disk, 37 s even with a 2 GiB in-memory table,
# against ~10 s this way. Every day ends with its own comma, so a list cut short by
# `group_concat_max_len` / `max_allowed_packet` has fewer commas than `COUNT(*)`.
_TERMINAL_TX_SQL = (
    "SELECT terminal_id, COUNT(*), "
    "GROUP_CONCAT(CONCAT(TO_DAYS(occurred_at) - %s, ',') SEPARATOR '') "
    "FROM transactions WHERE occurred_at >= %s AND occurred_at < %s AND terminal_id IS NOT NULL "
    "GROUP BY terminal_id"
)
# Confirmed frauds are few (one label row per transaction, most of them not fraud): grouping
# them by (terminal, customer, day) on the server stays small. The daily counts are their sums;
# the customers tell a compromised terminal from a shop where a stolen card was used
# (`TerminalHistory.run_customers`), the day their labels came tells which were confirmed early
# (`TerminalHistory.early_fraud_customers`), and `inside` whether the payment is before the
# daily counts' end (after it: read for the early confirmations only).
_TERMINAL_FRAUD_SQL = (
    "SELECT CONCAT_WS(',', terminal_id, user_id, day, n, labelled_day, inside) FROM ("
    f"SELECT t.terminal_id, t.user_id, TO_DAYS(t.occurred_at) - {EPOCH_DAYS} AS day, "
    f"COUNT(*) AS n, TO_DAYS(l.labelled_at) - {EPOCH_DAYS} AS labelled_day, "
    "t.occurred_at < %s AS inside "
    "FROM fraud_labels l JOIN transactions t ON t.id = l.transaction_id "
    "WHERE l.is_fraud = 1 AND t.occurred_at >= %s AND t.occurred_at < %s "
    "AND t.terminal_id IS NOT NULL "
    "GROUP BY t.terminal_id, t.user_id, day, labelled_day, inside) AS per_day"
)

#: Opens a server-side (streaming) cursor of the caller's connection, for use in `with`.
OpenCursor = Callable[[], Any]


def read_terminal_tables(
    open_cursor: OpenCursor,
    *,
    since: datetime,
    until: datetime,
    frauds_until: datetime | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Transactions and confirmed frauds per (terminal, day) (the columns of
    `terminal_days.terminal_days`) of [since, until) and the fraud-customer table
    (`terminal_history.FRAUD_CUSTOMER_COLUMNS`: confirmed frauds per terminal, customer and
    day, with the day their labels came, `LABELLED_DAY`) of [since, `frauds_until`)
    (default `until`; later: the early confirmations of an interval scored), the two
    inputs of a `TerminalHistory`."""
    counts = _terminal_tx_days(open_cursor, since, until)
    last = max(until, frauds_until or until)
    args = (utc_naive(until), utc_naive(since), utc_naive(last))
    names = [*FRAUD_CUSTOMER_COLUMNS, LABELLED_DAY, "inside"]
    with open_cursor() as cursor:
        frauds = csv_frame(cursor, _TERMINAL_FRAUD_SQL, args, names, dict.fromkeys(names, "int64"))
    inside = frauds.pop("inside").to_numpy() == 1
    per_day = frauds[inside].groupby(["terminal_id", "day"], as_index=False)["n_fraud"].sum()
    days = counts.merge(per_day, on=["terminal_id", "day"], how="left")
    days["n_fraud"] = days["n_fraud"].fillna(0).astype(np.int64)
    return days, frauds


def _terminal_tx_days(open_cursor: OpenCursor, since: datetime, until: datetime) -> pd.DataFrame:
    """(terminal_id, day, n_tx) from one row per terminal listing its transactions' days."""
    base = (utc_naive(since) - datetime(1970, 1, 1)).days + EPOCH_DAYS
    terminals: list[int] = []
    sizes: list[int] = []
    text = io.BytesIO()  # every day list, comma-separated, parsed once by NumPy
    with open_cursor() as cursor:
        cursor.execute(_TERMINAL_TX_SQL, (base, utc_naive(since), utc_naive(until)))
        while rows := cursor.fetchmany(10_000):
            for terminal_id, n, day_list in rows:
                if day_list is None or day_list.count(",") != n:
                    raise FraudAnalysisError(
                        f"the replica cut the transaction list of terminal {terminal_id} "
                        f"short ({n:,} transactions): raise its max_allowed_packet"
                    )
                terminals.append(terminal_id)
                sizes.append(n)
                text.write(day_list.encode())
    if not sizes:
        return pd.DataFrame({name: pd.Series(dtype="int64") for name in _TERMINAL_DAY_COLS})
    offsets = np.fromstring(text.getvalue(), dtype=np.int64, sep=",")
    del text
    # One row per terminal, so the row number is a terminal's rank: keys stay small.
    rank = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
    unique, n_tx = np.unique(rank * _DAYS_PER_TERMINAL_KEY + offsets, return_counts=True)
    return pd.DataFrame(
        {
            "terminal_id": np.asarray(terminals, dtype=np.int64)[unique // _DAYS_PER_TERMINAL_KEY],
            "day": unique % _DAYS_PER_TERMINAL_KEY + base - EPOCH_DAYS,
            "n_tx": n_tx,
        }
    )
