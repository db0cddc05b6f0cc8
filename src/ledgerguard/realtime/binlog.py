"""Following the replica's binary log: committed transactions of two tables, by GTID.

The replica writes what it applies to its own binlog (`log_slave_updates`), so reading it costs
the primary and the API's write path nothing. `mysql-replication` (PyPI) speaks the replication
protocol; row events carry column names only with `binlog_row_metadata=FULL`, which
`check_row_metadata` insists on before the scorer starts.

A background thread reads events and hands over *whole transactions* (`BinlogTransaction`: the
GTID, the commit time, the row changes of `transactions` and `fraud_labels`) through a bounded
queue, so the scorer batches by time without ever blocking inside the driver. Transactions that
touch neither table (the replication heartbeat, API keys) come through empty: they still move
the position, which is how the lag reaches zero on an idle stream.

When the replica goes away the thread waits and reconnects from the last transaction it handed
over (`reconnects`, `connected`); a position the binlog no longer holds raises
`CheckpointPurged` in the scorer. A migration is just more events: a DDL statement ends its
transaction like a commit and makes the reader forget the table maps it holds (it keeps them per
table id otherwise, `freeze_schema`), so the next row events are read with the new columns;
columns we do not know are ignored.

CPU: rows of `transactions` are decoded by `rowdecode` (one pass over the event's bytes) rather
than by the library, which cost ~40 µs a row.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pymysql

from ledgerguard.db.dialect import Flavour, executed_gtids_query
from ledgerguard.realtime.errors import CheckpointPurged, ScorerError
from ledgerguard.realtime.position import GtidPosition
from ledgerguard.settings import Settings

log = logging.getLogger(__name__)

#: Tables the scorer follows; every other table's events are skipped by the library.
TABLES = ("transactions", "fraud_labels")
#: Server error "could not find GTID state requested by slave in any binlog files" (MariaDB),
#: and MySQL's "the source has purged binary logs containing GTIDs that the replica requires".
_PURGED_ERRORS = (1236,)
#: Seconds between reconnection attempts while the replica is down.
RECONNECT_SECONDS = 1.0


class RowChange(NamedTuple):
    """One row of a rows event (a named tuple: made for every row, a frozen dataclass cost
    several times more to build)."""

    table: str
    kind: str  # insert / update / delete
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass
class BinlogTransaction:
    gtid: str
    committed_at: float  # seconds since the epoch (the binlog has whole seconds)
    changes: list[RowChange] = field(default_factory=list)


def check_row_metadata(conn: pymysql.connections.Connection) -> None:
    """Refuse to run against a server whose row events have no column names."""
    with conn.cursor() as cursor:
        cursor.execute("SHOW GLOBAL VARIABLES LIKE 'binlog_row_metadata'")
        row = cursor.fetchone()
    value = (row[1] if row else "") or ""
    if value.upper() != "FULL":
        raise ScorerError(
            f"the replica has binlog_row_metadata={value or 'unsupported'}, the scorer needs FULL "
            "(row events without column names cannot be read safely): set "
            "binlog_row_metadata = FULL in its configuration (`ledgerguard cluster up` writes it "
            "for the local cluster; deploy/mysql/replica.cnf for Compose) and restart it"
        )


class BinlogFollower:
    """A thread reading the replica's binlog from `position` into a queue of transactions."""

    def __init__(
        self,
        settings: Settings,
        *,
        flavour: Flavour,
        position: GtidPosition,
        server_id: int,
        max_queued: int = 20_000,
    ) -> None:
        self._settings = settings
        self._flavour = flavour
        self._position = position.copy()  # what has been handed over
        self._server_id = server_id
        self.queue: queue.Queue[BinlogTransaction | BaseException] = queue.Queue(max_queued)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="binlog-follower", daemon=True)
        self.connected = False
        self.reconnects = 0
        self.events_read = 0
        self.last_error = ""
        #: CPU seconds of the follower thread (reading and decoding events)
        self.cpu_seconds = 0.0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _stream(self) -> Any:
        return open_stream(
            self._settings,
            flavour=self._flavour,
            position=self._position,
            server_id=self._server_id,
            blocking=True,
        )

    def _run(self) -> None:
        while not self._stop.is_set():
            stream = None
            try:
                stream = self._stream()
                self._follow(stream)
            except pymysql.err.OperationalError as exc:
                code = exc.args[0] if exc.args else 0
                if code in _PURGED_ERRORS:
                    self.queue.put(
                        CheckpointPurged(
                            f"the replica's binlog no longer holds the checkpoint position "
                            f"{self._position.text()!r} ({exc.args[-1]}): run `ledgerguard scorer "
                            "--rebuild` once, which scores the uncovered interval from the "
                            "replica's tables and starts from the replica's current position"
                        )
                    )
                    return
                self._lost(exc)
            except (OSError, pymysql.err.Error) as exc:
                self._lost(exc)
            except Exception as exc:  # noqa: BLE001 - a bug or an undecodable event: hand it to the scorer, which stops
                self.queue.put(exc)
                return
            finally:
                if stream is not None:
                    stream.close()

    def _lost(self, exc: BaseException) -> None:
        self.connected = False
        self.reconnects += 1
        self.last_error = str(exc) or type(exc).__name__
        log.warning("binlog stream lost (%s); reconnecting", self.last_error)
        self._stop.wait(RECONNECT_SECONDS)

    def _follow(self, stream: Any) -> None:
        assembler = TransactionAssembler(tables=stream.table_map)
        while not self._stop.is_set():
            event = stream.fetchone()
            if event is None:
                continue
            self.connected = True
            self.events_read += 1
            transaction = assembler.feed(event)
            if transaction is not None:
                self._hand_over(transaction)
            # the thread's CPU so far: reading the socket and decoding the events
            self.cpu_seconds = time.thread_time()

    def _hand_over(self, transaction: BinlogTransaction) -> None:
        while not self._stop.is_set():
            try:
                self.queue.put(transaction, timeout=0.5)
                break
            except queue.Full:
                continue
        self._position.advance(transaction.gtid)


def open_stream(
    settings: Settings,
    *,
    flavour: Flavour,
    position: GtidPosition,
    server_id: int,
    blocking: bool,
) -> Any:
    """A `BinLogStreamReader` of the two tables' row events from `position` (GTID).

    The library decodes only what passes its filters: the events of `only_events`, and of
    those, row events of `only_tables` in `only_schemas` (others are skipped after their
    header). The GTID, XID and query events are what delimit transactions.
    """
    from pymysqlreplication import BinLogStreamReader
    from pymysqlreplication.event import GtidEvent, MariadbGtidEvent, QueryEvent, XidEvent
    from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

    mariadb = flavour is Flavour.MARIADB
    return BinLogStreamReader(
        connection_settings={
            "host": settings.replica_host,
            "port": settings.replica_port,
            "user": settings.repl_user,
            "passwd": settings.repl_password.get_secret_value(),
            "connect_timeout": 3,
            "read_timeout": 30,
        },
        server_id=server_id,
        blocking=blocking,
        resume_stream=True,
        auto_position=position.text() or None,
        is_mariadb=mariadb,
        only_schemas=[settings.database],
        only_tables=list(TABLES),
        only_events=[
            MariadbGtidEvent if mariadb else GtidEvent,
            XidEvent,
            QueryEvent,
            WriteRowsEvent,
            UpdateRowsEvent,
            DeleteRowsEvent,
        ],
        slave_heartbeat=5,
        enable_logging=False,
        # a table's map (names, types, charsets: the costliest event to parse) is read once per
        # table id instead of before every row event; `TransactionAssembler` forgets the maps
        # after each DDL statement, so a migration is still followed
        freeze_schema=True,
    )


class TransactionAssembler:
    """Events in, whole transactions out: `feed` returns a transaction once it is committed."""

    def __init__(self, *, tables: dict[int, Any] | None = None, fast: bool = True) -> None:
        from pymysqlreplication.event import GtidEvent, MariadbGtidEvent, QueryEvent, XidEvent
        from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

        from ledgerguard.realtime.rowdecode import decode_rows

        # `fast=False`: the library decodes every row (what `rowdecode` is tested against)
        self._decode_rows = decode_rows if fast else lambda event: None
        self._gtid = (MariadbGtidEvent, GtidEvent)
        self._xid, self._query = XidEvent, QueryEvent
        self._write, self._update, self._delete = WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent
        self._current: BinlogTransaction | None = None
        #: the stream's table maps, forgotten after every DDL statement (see `open_stream`)
        self._tables = tables

    def feed(self, event: Any) -> BinlogTransaction | None:
        current = self._current
        if isinstance(event, self._gtid):
            self._current = BinlogTransaction(gtid=event.gtid, committed_at=float(event.timestamp))
        elif current is None:
            return None  # the tail of a transaction begun before our position
        elif isinstance(event, self._write):
            rows = self._decode_rows(event)
            if rows is None:  # a layout the fast decoder does not know: the library's way
                rows = [row["values"] for row in event.rows]
            current.changes += [RowChange(event.table, "insert", None, row) for row in rows]
        elif isinstance(event, self._update):
            current.changes += [
                RowChange(event.table, "update", row["before_values"], row["after_values"])
                for row in event.rows
            ]
        elif isinstance(event, self._delete):
            current.changes += [
                RowChange(event.table, "delete", row["values"], None) for row in event.rows
            ]
        elif isinstance(event, self._xid) or (
            isinstance(event, self._query) and _ends_transaction(event.query)
        ):
            if self._tables is not None and isinstance(event, self._query):
                self._tables.clear()  # a DDL statement: the next row events bring new maps
            self._current = None
            return current
        return None


def read_transactions(
    settings: Settings,
    *,
    flavour: Flavour,
    start: GtidPosition,
    end: GtidPosition,
    server_id: int,
    fast: bool = True,
) -> tuple[list[BinlogTransaction], int]:
    """The transactions with row changes after `start` up to `end`, and the events read.

    A blocking stream stopped once `end` is covered (MariaDB drops a non-blocking GTID dump's
    connection at the end of the binlog instead of answering EOF). For measurements and tests.
    """
    stream = open_stream(
        settings, flavour=flavour, position=start, server_id=server_id, blocking=True
    )
    assembler = TransactionAssembler(tables=stream.table_map, fast=fast)
    found: list[BinlogTransaction] = []
    position = start.copy()
    events = 0
    try:
        # the position moves only when a transaction ends: compared with `end` only then
        remaining = position.behind(end) > 0
        while remaining:
            event = stream.fetchone()
            if event is None:
                continue
            events += 1
            transaction = assembler.feed(event)
            if transaction is not None:
                position.advance(transaction.gtid)
                if transaction.changes:
                    found.append(transaction)
                remaining = position.behind(end) > 0
    finally:
        stream.close()
    return found, events


def executed_position(settings: Settings, flavour: Flavour) -> GtidPosition:
    """The GTIDs the replica has executed (and so written to its own binlog)."""
    statement = executed_gtids_query(flavour)
    conn = pymysql.connect(
        host=settings.replica_host,
        port=settings.replica_port,
        user=settings.replica_user,
        password=settings.replica_password.get_secret_value(),
        connect_timeout=3,
    )
    try:
        with conn.cursor() as cursor:
            cursor.execute(statement.sql, statement.params)
            return GtidPosition.parse(flavour, str(cursor.fetchone()[0] or ""))
    finally:
        conn.close()


def _ends_transaction(query: Any) -> bool:
    """A COMMIT or a DDL statement ends a transaction; BEGIN does not."""
    text = (query.decode(errors="replace") if isinstance(query, bytes) else str(query)).strip()
    return text.upper() != "BEGIN"
