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

Speed: the server sends each transaction as one text value of integers and pandas' C parser
splits them (`fraud.replica_text` says why and holds the parse). The terminal tables, grouped
per terminal rather than per user, are read in the same snapshot by `fraud.terminal_tables`.
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

from ledgerguard.cluster.errors import ClusterError
from ledgerguard.cluster.health import check_replica_fresh
from ledgerguard.db.dialect import Flavour, snapshot_position_queries
from ledgerguard.db.engines import analytics_engine
from ledgerguard.db.tables import fraud_scores
from ledgerguard.fraud.engine.windows import TX_DTYPES
from ledgerguard.fraud.errors import FraudAnalysisError
from ledgerguard.fraud.read_ahead import read_ahead_of
from ledgerguard.fraud.replica_text import EPOCH_DAYS, parse_csv
from ledgerguard.fraud.terminal_tables import read_terminal_tables
from ledgerguard.fraud.verdict_columns import COLUMNS as VERDICT_COLUMNS
from ledgerguard.settings import Settings
from ledgerguard.utc import utc_naive

_PAGE_WHERE = "WHERE user_id >= %s AND user_id < %s AND occurred_at >= %s AND occurred_at < %s"
_BUCKET_SQL = " AND user_id MOD %s = %s"
#: One transaction as one text value of integers (and the currency code): see the docstring.
_TX_TEXT = (
    "CONCAT_WS(',', id, user_id, COALESCE(terminal_id, -1), "
    "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', occurred_at), "
    "CAST(amount * 10000 AS SIGNED), COALESCE(CAST(amount_usd * 10000 AS SIGNED), -1), currency)"
)
#: A page: one row per user, its transactions as lines of one text value. Grouping by
#: `user_id` follows the covering (user_id, occurred_at, ...) index, so the server streams the
#: groups without a temporary table, and the driver handles a few thousand rows per page
#: instead of 400k (~1.6 s -> ~1.0 s per 800k transactions, the rest now the server's).
#: Every line ends with its own newline, so a list cut short by `group_concat_max_len` or
#: `max_allowed_packet` has fewer newlines than `COUNT(*)` (with separators *between* lines, a
#: cut inside the last line left the count right and half a line behind).
_PAGE_SQL = (
    f"SELECT user_id, COUNT(*), GROUP_CONCAT(CONCAT({_TX_TEXT}, '\\n') SEPARATOR '') "
    "FROM transactions {where} GROUP BY user_id"
)
#: The transactions of one user, one row each: for a user whose list was cut short.
_USER_ROWS_SQL = (
    f"SELECT {_TX_TEXT} FROM transactions "
    "WHERE user_id = %s AND occurred_at >= %s AND occurred_at < %s"
)
#: User id of the first row past `page_rows` rows (same filter as a page; covering index).
_PAGE_END_SQL = "SELECT user_id FROM transactions {where} ORDER BY user_id LIMIT 1 OFFSET %s"
_USER_BOUNDS_SQL = "SELECT MIN(user_id), MAX(user_id) FROM transactions"
#: Transactions of [since, until) confirmed as fraud by labels known before `known_by`, with
#: the day each label came: a model's target (and its early confirmations), a backtest's truth.
_FRAUD_IDS_SQL = (
    f"SELECT l.transaction_id, TO_DAYS(l.labelled_at) - {EPOCH_DAYS} "
    "FROM fraud_labels l JOIN transactions t ON t.id = l.transaction_id "
    "WHERE l.is_fraud = 1 AND t.occurred_at >= %s AND t.occurred_at < %s "
    "AND l.labelled_at < %s"
)
#: A report's columns: every stored verdict column but the model version (the reports do not
#: show it), in `fraud_scores` order, from the one list of a verdict's columns.
_REPORT_COLUMNS = tuple(
    fraud_scores.c[column.name] for column in VERDICT_COLUMNS if column.name != "model_version"
)
#: Longest day list of one terminal: 2^31 bytes, ~300M transactions in a window (the server
#: still stops at `max_allowed_packet`, which `terminal_tables` detects and reports).
_GROUP_CONCAT_MAX_LEN = 2**31

Progress = Callable[[int, int], None]


def wait_for_replica(settings: Settings) -> None:
    """Return once the replica has applied everything the primary had committed at the call.

    The analysis reads `fraud_scores` of earlier runs (and the report reads this run's) on the
    replica, so it first waits for the primary's executed GTID set there, up to
    `settings.replica_catch_up_timeout` seconds: the freshness rule of the DAGs' health check
    (`cluster.health.check_replica_fresh`) with "now" as the interval's end. Raises
    `FraudAnalysisError` when the replica does not get there in time or cannot be reached:
    analytics never run on stale data.
    """
    try:
        check_replica_fresh(
            settings,
            until=datetime.now(UTC),
            timeout=settings.replica_catch_up_timeout,
            allow_open_interval=True,
        )
    except ClusterError as exc:
        raise FraudAnalysisError(
            f"{exc} (waited up to LEDGERGUARD_REPLICA_CATCH_UP_TIMEOUT="
            f"{settings.replica_catch_up_timeout:g} s)"
        ) from exc


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
        self._conn: sa.Connection | None = None  # SQLAlchemy Core queries (few rows)
        self._connection: Any = None  # its DBAPI connection: streamed pages, server cursors
        self.rows_read = 0

    def __enter__(self) -> ReplicaReader:
        self._conn = self._engine.connect()
        self._connection = self._conn.connection.dbapi_connection
        with self._connection.cursor() as cursor:
            cursor.execute("SET SESSION group_concat_max_len = %s", (_GROUP_CONCAT_MAX_LEN,))
            cursor.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if self._conn is not None:
                self._conn.rollback()
                self._conn.close()
        finally:
            self._engine.dispose()

    def _cursor(self) -> Any:
        return self._connection.cursor(SSCursor)

    def snapshot_position(self, flavour: Flavour) -> str:
        """The GTID position this snapshot holds (see `snapshot_position_queries`).

        The streaming scorer rebuilds its state from the snapshot and follows the binlog from
        there, so no transaction is counted twice or missed.
        """
        first, *rest = snapshot_position_queries(flavour)
        with self._connection.cursor() as cursor:
            cursor.execute(first.sql, first.params)
            rows = cursor.fetchall()
            if not rest:
                return str(rows[0][0] or "")
            status = {name.lower(): value for name, value in rows}
            cursor.execute(
                rest[0].sql,
                (status["binlog_snapshot_file"], int(status["binlog_snapshot_position"])),
            )
            return str(cursor.fetchone()[0] or "")

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
        text = io.BytesIO()
        short: list[int] = []
        with self._cursor() as cursor:
            cursor.execute(sql, args)
            while rows := cursor.fetchmany(10_000):
                for user_id, n, lines in rows:
                    if lines is None or lines.count("\n") != n:
                        short.append(int(user_id))  # cut short: read again row by row
                        continue
                    text.write(lines.encode())
            for user_id in short:
                cursor.execute(_USER_ROWS_SQL, (user_id, utc_naive(since), utc_naive(until)))
                while rows := cursor.fetchmany(50_000):
                    text.write("\n".join([row[0] for row in rows]).encode())
                    text.write(b"\n")
        frame = parse_csv(text, list(TX_DTYPES), TX_DTYPES)
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
        read_ahead: bool = True,
    ) -> Iterator[pd.DataFrame]:
        """Every page of users, in user id order; `progress(done, total)` in user ids covered.

        With `read_ahead`, the next page is read in a background thread while the caller works
        on this one: the server's share of a read (~0.9 s per 400k rows, the driver then waits
        on the socket without the GIL) overlaps the caller's scoring. At most three pages are
        alive then: the caller's, one waiting, one being read (~70 MiB each at 400k rows).
        """
        items = self._page_items(
            since=since, until=until, page_rows=page_rows, bucket=bucket, buckets=buckets
        )
        for frame, done, total in read_ahead_of(items) if read_ahead else items:
            if progress is not None:
                progress(done, total)
            if len(frame):
                yield frame
            del frame  # not kept alive by this generator while the next page is read

    def _page_items(
        self, *, since: datetime, until: datetime, page_rows: int, bucket: int, buckets: int
    ) -> Iterator[tuple[pd.DataFrame, int, int]]:
        """(page, user ids covered, user ids in all) for every page, empty pages included."""
        bounds = self.user_bounds()
        if bounds is None:
            return
        low, high = bounds
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
            yield frame, stop - low, high - low + 1
            del frame
            start = stop

    def stored_ids(
        self, *, start: datetime, end: datetime, bucket: int = 0, buckets: int = 1
    ) -> np.ndarray:
        """Ids already in `fraud_scores` for transactions of [start, end) in this bucket."""
        query = sa.select(fraud_scores.c.transaction_id).where(
            fraud_scores.c.occurred_at >= start, fraud_scores.c.occurred_at < end
        )
        if buckets > 1:
            query = query.where(fraud_scores.c.user_id % buckets == bucket)
        return np.fromiter(self._core().execute(query).scalars(), dtype=np.int64)

    def fraud_ids(self, *, since: datetime, until: datetime, known_by: datetime) -> np.ndarray:
        """Ids of transactions in [since, until) labelled fraud before `known_by`."""
        return self.fraud_labels(since=since, until=until, known_by=known_by)[0]

    def fraud_labels(
        self, *, since: datetime, until: datetime, known_by: datetime
    ) -> tuple[np.ndarray, np.ndarray]:
        """(ids, labelled days) of the transactions in [since, until) labelled fraud before
        `known_by`: the day (since 1970-01-01 UTC) each label came."""
        with self._cursor() as cursor:
            cursor.execute(
                _FRAUD_IDS_SQL, (utc_naive(since), utc_naive(until), utc_naive(known_by))
            )
            rows = cursor.fetchall()
        ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        days = np.fromiter((row[1] for row in rows), dtype=np.int64, count=len(rows))
        return ids, days

    def report_rows(self, *, start: datetime, end: datetime) -> list[sa.Row[Any]]:
        """Flagged or unconverted verdicts of transactions in [start, end), by transaction id."""
        query = (
            sa.select(*_REPORT_COLUMNS)
            .where(
                fraud_scores.c.occurred_at >= start,
                fraud_scores.c.occurred_at < end,
                sa.or_(fraud_scores.c.flagged.is_(True), fraud_scores.c.amount_usd.is_(None)),
            )
            .order_by(fraud_scores.c.transaction_id)
        )
        return list(self._core().execute(query).all())

    def _core(self) -> sa.Connection:
        if self._conn is None:
            raise RuntimeError("ReplicaReader used outside its `with` block")
        return self._conn

    def terminal_tables(
        self, *, since: datetime, until: datetime, frauds_until: datetime | None = None
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The two inputs of a `TerminalHistory` in this snapshot: transactions and confirmed
        frauds per (terminal, day) of [since, until) and the fraud-customer table of [since,
        `frauds_until`) (see `terminal_tables.read_terminal_tables`)."""
        return read_terminal_tables(
            self._cursor, since=since, until=until, frauds_until=frauds_until
        )
