"""Reads for the fraud engine: the replica only, as `app_user`, in bounded pages of users.

Every read of one run happens inside one `START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY`
on the replica, so pages read minutes apart still see the same data even while replication keeps
applying new transactions.

Pages are ranges of `user_id` (plus `user_id MOD buckets = bucket` for a bucketed run): a page
holds every transaction of its users in [since, until), so per-user windows are computed on one
page alone and memory is bounded by the page size, not the table. Where a page ends is asked of
the server, not guessed: the user id of the row `page_rows` rows further along the
(user_id, occurred_at) index (`LIMIT 1 OFFSET page_rows`, an index-only scan of ~70 ms per
400k rows). A page therefore holds at most `page_rows` rows unless one user alone has more.
Estimating the width of the next id range from the density of the last one (the earlier
method) read 2M rows as one page when the user ids had a wide empty gap (test users near 10^6,
benchmark users near 7*10^9): peak memory then grew with the whole interval.

Speed: the pure-Python driver costs about a microsecond per column value, so the server sends
each row as one comma-separated text value of integers (money in exact 10^-4 units, time in
microseconds since the epoch) and pandas' C parser splits them: roughly twice as fast as
fetching the columns one by one.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from pymysql.cursors import SSCursor

from ledgerguard.db.engines import analytics_url
from ledgerguard.fraud.features import TX_DTYPES
from ledgerguard.settings import Settings

_EPOCH_DAYS = 719_528  # TO_DAYS('1970-01-01')

_PAGE_WHERE = "WHERE user_id >= %s AND user_id < %s AND occurred_at >= %s AND occurred_at < %s"
_BUCKET_SQL = " AND user_id MOD %s = %s"
_PAGE_SQL = (
    "SELECT CONCAT_WS(',', id, user_id, COALESCE(terminal_id, -1), "
    "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', occurred_at), "
    "CAST(amount * 10000 AS SIGNED), COALESCE(CAST(amount_usd * 10000 AS SIGNED), -1), currency) "
    "FROM transactions {where}"
)
#: User id of the first row past `page_rows` rows (same filter as a page; covering index).
_PAGE_END_SQL = "SELECT user_id FROM transactions {where} ORDER BY user_id LIMIT 1 OFFSET %s"
_USER_BOUNDS_SQL = "SELECT MIN(user_id), MAX(user_id) FROM transactions"
# Terminal counts group in a derived table of plain integers and format the CSV text only
# afterwards: grouping with the text column in the SELECT made MariaDB's temporary table carry a
# ~220-byte string per group, so it outgrew `tmp_table_size` and went to disk (13.7 s instead
# of 4.6 s for 450,000 (terminal, day) groups over 2M rows).
_TERMINAL_TX_SQL = (
    "SELECT CONCAT_WS(',', terminal_id, day, n) FROM ("
    f"SELECT terminal_id, TO_DAYS(occurred_at) - {_EPOCH_DAYS} AS day, COUNT(*) AS n "
    "FROM transactions WHERE occurred_at >= %s AND occurred_at < %s AND terminal_id IS NOT NULL "
    "GROUP BY terminal_id, day) AS per_day"
)
_TERMINAL_FRAUD_SQL = (
    "SELECT CONCAT_WS(',', terminal_id, day, n) FROM ("
    f"SELECT t.terminal_id, TO_DAYS(t.occurred_at) - {_EPOCH_DAYS} AS day, COUNT(*) AS n "
    "FROM fraud_labels l JOIN transactions t ON t.id = l.transaction_id "
    "WHERE l.is_fraud = 1 AND t.occurred_at >= %s AND t.occurred_at < %s "
    "AND t.terminal_id IS NOT NULL GROUP BY t.terminal_id, day) AS per_day"
)

Progress = Callable[[int, int], None]


def utc_naive(moment: datetime) -> datetime:
    """A timezone-aware datetime as the naive UTC value a DATETIME column holds."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime given; the fraud engine works in timezone-aware UTC")
    return moment.astimezone(UTC).replace(tzinfo=None)


def analytics_engine(settings: Settings) -> sa.Engine:
    """A sync engine for `app_user` on the replica, no pool (one batch job, one connection)."""
    return sa.create_engine(analytics_url(settings), poolclass=sa.pool.NullPool)


def _csv_rows(
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
    if not text.tell():
        return pd.DataFrame({name: pd.Series(dtype=dtypes.get(name, "object")) for name in names})
    text.seek(0)
    return pd.read_csv(text, header=None, names=names, dtype=dtypes, na_filter=False)


def _page_query(
    sql: str, users: tuple[int, int], since: datetime, until: datetime, bucket: int, buckets: int
) -> tuple[str, tuple[Any, ...]]:
    """`sql` with its `{where}` filled for users, time and bucket, and the arguments."""
    where, args = _PAGE_WHERE, (users[0], users[1], utc_naive(since), utc_naive(until))
    if buckets > 1:
        where, args = where + _BUCKET_SQL, (*args, buckets, bucket)
    return sql.format(where=where), args


class ReplicaReader:
    """One consistent, read-only snapshot of the replica for the length of a `with` block."""

    def __init__(self, settings: Settings) -> None:
        self._engine = analytics_engine(settings)
        self._connection: Any = None
        self.rows_read = 0

    def __enter__(self) -> ReplicaReader:
        self._connection = self._engine.raw_connection()
        with self._connection.cursor() as cursor:
            cursor.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if self._connection is not None:
                self._connection.rollback()
                self._connection.close()
        finally:
            self._engine.dispose()

    def _cursor(self) -> Any:
        return self._connection.cursor(SSCursor)

    def user_bounds(self) -> tuple[int, int] | None:
        """Smallest and largest user id in the table (index ends: instant), None when empty."""
        with self._connection.cursor() as cursor:
            cursor.execute(_USER_BOUNDS_SQL)
            low, high = cursor.fetchone()
        return None if low is None else (int(low), int(high))

    def page(
        self,
        *,
        users: tuple[int, int],
        since: datetime,
        until: datetime,
        bucket: int = 0,
        buckets: int = 1,
    ) -> pd.DataFrame:
        """Transactions of users in [users[0], users[1]) within [since, until) as a tx frame."""
        sql, args = _page_query(_PAGE_SQL, users, since, until, bucket, buckets)
        with self._cursor() as cursor:
            frame = _csv_rows(cursor, sql, args, list(TX_DTYPES), TX_DTYPES)
        self.rows_read += len(frame)
        return frame

    def page_end(
        self,
        *,
        users: tuple[int, int],
        since: datetime,
        until: datetime,
        page_rows: int,
        bucket: int = 0,
        buckets: int = 1,
    ) -> int:
        """End (exclusive) of the page of users starting at `users[0]`, at most `users[1]`.

        The page ends before the user owning the row `page_rows` rows further along, so it holds
        at most `page_rows` rows, except when that user is the first one: a user is never split,
        so the page is then that user alone. `users[1]` when fewer rows than that are left.
        """
        sql, args = _page_query(_PAGE_END_SQL, users, since, until, bucket, buckets)
        with self._connection.cursor() as cursor:
            cursor.execute(sql, (*args, page_rows))
            found = cursor.fetchone()
        if found is None:
            return users[1]
        return max(int(found[0]), users[0] + 1)

    def pages(
        self,
        *,
        since: datetime,
        until: datetime,
        page_rows: int,
        bucket: int = 0,
        buckets: int = 1,
        progress: Progress | None = None,
    ) -> Iterator[pd.DataFrame]:
        """Every page of users, in user id order; `progress(done, total)` in user ids covered."""
        bounds = self.user_bounds()
        if bounds is None:
            return
        low, high = bounds
        total = high - low + 1
        start = low
        while start <= high:
            stop = self.page_end(
                users=(start, high + 1),
                since=since,
                until=until,
                page_rows=page_rows,
                bucket=bucket,
                buckets=buckets,
            )
            frame = self.page(
                users=(start, stop), since=since, until=until, bucket=bucket, buckets=buckets
            )
            if progress is not None:
                progress(stop - low, total)
            if len(frame):
                yield frame
            del frame  # not kept alive by this generator while the next page is read
            start = stop

    def terminal_days(self, *, since: datetime, until: datetime) -> pd.DataFrame:
        """Transactions and confirmed frauds per (terminal, day) in [since, until)."""
        names = ["terminal_id", "day", "n"]
        dtypes = dict.fromkeys(names, "int64")
        args = (utc_naive(since), utc_naive(until))
        with self._cursor() as cursor:
            counts = _csv_rows(cursor, _TERMINAL_TX_SQL, args, names, dtypes)
        with self._cursor() as cursor:
            frauds = _csv_rows(cursor, _TERMINAL_FRAUD_SQL, args, names, dtypes)
        days = counts.rename(columns={"n": "n_tx"}).merge(
            frauds.rename(columns={"n": "n_fraud"}), on=["terminal_id", "day"], how="left"
        )
        days["n_fraud"] = days["n_fraud"].fillna(0).astype(np.int64)
        return days
