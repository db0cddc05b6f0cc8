"""Durable transaction writes, with group commit inside each API worker.

Every POST waits until its row is committed on the primary (`innodb_flush_log_at_trx_commit=1`,
`sync_binlog=1`), so a 201 always means "on disk". To keep that affordable under load, requests
without an `Idempotency-Key` that arrive while a commit is in flight are gathered into one
multi-row INSERT and one COMMIT (one fsync) by a few committer tasks: at low load each request
commits alone (no added latency, nothing waits for a timer), at high load the batches grow by
themselves. A failed batch fails every request in it; none of its rows exist.

Requests *with* an `Idempotency-Key` take the single-row path: the transaction row and the
`(api key, idempotency key)` row are inserted in one transaction, so concurrent duplicates are
serialised by the primary key of `idempotency_keys`: exactly one inserts, the others wait on its
row lock, get a duplicate-key error once it commits, and return the original transaction.

Backpressure: each worker's queue is bounded (`write_queue_size`; full -> `WriteRejected`, the
API's 503 with `Retry-After`) and a request waits for its commit at most `write_timeout` seconds,
so a stalled primary costs a bounded amount of memory and every client gets an answer. A request
still queued when its time is up is withdrawn (nothing is written); one whose batch was already
sent is answered "outcome unknown" (`WriteOutcomeUnknown`, also 503: retry with an
`Idempotency-Key` to be safe). A COMMIT that succeeded is never reported as an error: if reading
the GTID afterwards fails, the result has no consistency token. These exceptions, and how a driver
error is read (`is_outage`, a duplicate `external_id`), are in `ledgerguard.db.write_errors`.

Ids of a multi-row INSERT are `LAST_INSERT_ID() + i`: InnoDB gives a "simple insert" (row count
known up front) consecutive auto-increment values with `innodb_autoinc_lock_mode` 0 or 1 (MariaDB
default 1; every server that can be promoted is configured with 1 explicitly, MySQL included,
whose default is 2). The writer checks the mode on every new connection: on any other value it
logs why and commits one row per INSERT (slower, never a wrong id).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import operator
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncmy
import asyncmy.errors
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ledgerguard.db.consistency import primary_position
from ledgerguard.db.dialect import Flavour, last_gtid_query
from ledgerguard.db.tables import idempotency_keys
from ledgerguard.db.transactions import NewTransaction
from ledgerguard.db.write_errors import (
    DuplicateExternalId,
    IdempotencyConflict,
    WriteOutcomeUnknown,
    WriteRejected,
    is_outage,
    translate,
)
from ledgerguard.utc import utc_naive

_COLUMNS = (
    "user_id",
    "amount",
    "currency",
    "amount_usd",
    "occurred_at",
    "created_at",
    "external_id",
    "terminal_id",
    "merchant_id",
    "status",
)
_ROW = "(" + ", ".join(["%s"] * len(_COLUMNS)) + ")"
_INSERT = f"INSERT INTO transactions ({', '.join(_COLUMNS)}) VALUES "

log = logging.getLogger(__name__)

#: Driver errors after which a committer's connection is unusable.
_CONNECTION_ERRORS = (asyncmy.errors.OperationalError, asyncmy.errors.InterfaceError, OSError)


#: a row's values in `_COLUMNS` order, read in one C call (no dict per row: issue #13)
_VALUES = operator.attrgetter(*_COLUMNS)
_OCCURRED_AT, _CREATED_AT = _COLUMNS.index("occurred_at"), _COLUMNS.index("created_at")


def _params(tx: NewTransaction) -> tuple[Any, ...]:
    values = list(_VALUES(tx))
    values[_OCCURRED_AT] = datetime_text(tx.occurred_at)
    values[_CREATED_AT] = datetime_text(tx.created_at)
    return tuple(values)


def datetime_text(moment: datetime) -> str:
    """A timezone-aware datetime as the text of its UTC DATETIME value, exactly the literal
    the driver writes for the datetime itself (`YYYY-MM-DD HH:MM:SS[.ffffff]`): the driver
    escapes a string in a tenth of the time it takes to format a datetime, ~5 µs per row of
    a batch (issue #13)."""
    return utc_naive(moment).isoformat(" ")


@dataclass(frozen=True)
class WriteResult:
    transaction_id: int
    gtid: str | None
    #: True when an Idempotency-Key replay returned an earlier transaction.
    replayed: bool = False


def ids_are_consecutive(autoinc_lock_mode: int) -> bool:
    """Whether a multi-row INSERT gets consecutive ids (modes 0 and 1; not 2, "interleaved")."""
    return autoinc_lock_mode in (0, 1)


class _NotBatchable(Exception):
    """The server's auto-increment mode does not give consecutive ids to a multi-row INSERT."""


class _KeyUnused(Exception):
    """No idempotency row for this (API key, Idempotency-Key)."""


@dataclass
class _Pending:
    tx: NewTransaction
    done: asyncio.Future[WriteResult] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    #: set when a committer took it: from then on it can no longer be withdrawn
    taken: bool = False


class TransactionWriter:
    """Owns the write path of one worker; start it in the app's lifespan, stop it after."""

    def __init__(
        self,
        engine: Callable[[], AsyncEngine],
        *,
        flavour: Callable[[], Flavour] = lambda: Flavour.MARIADB,
        on_outage: Callable[[], Awaitable[None]] | None = None,
        committers: int = 4,
        max_batch: int = 500,
        queue_size: int = 2000,
        timeout: float = 5.0,
    ) -> None:
        """`engine` and `flavour` are asked at each commit, so the primary may change (failover);
        `on_outage` runs after a write failed for lack of a server (e.g. to look for the new
        primary). At most `queue_size` requests wait; each waits at most `timeout` seconds."""
        self._engine = engine
        self._flavour = flavour
        self._on_outage = on_outage
        self.committers = committers
        self.max_batch = max_batch
        self.timeout = timeout
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(maxsize=queue_size)
        #: COMMITs sent so far (tests check that one bad row does not split a whole batch)
        self.commits = 0
        #: False when the primary's innodb_autoinc_lock_mode forbids multi-row INSERTs
        self.batching = True
        self._tasks: list[asyncio.Task[None]] = []
        # one long-lived driver connection per committer task (see `_commit`)
        self._raw: dict[int, tuple[sa.URL, Any]] = {}

    @property
    def engine(self) -> AsyncEngine:
        return self._engine()

    @property
    def flavour(self) -> Flavour:
        return self._flavour()

    async def _outage(self, exc: BaseException) -> None:
        if self._on_outage is not None and is_outage(exc):
            await self._on_outage()

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._commit_loop(slot)) for slot in range(self.committers)
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for _, conn in self._raw.values():
            conn.close()
        self._raw.clear()

    # --- batched path ------------------------------------------------------------------------
    async def write(self, tx: NewTransaction) -> WriteResult:
        """Commit `tx` (possibly with others) and return its id and the commit's GTID.

        Raises `WriteRejected` (queue full, or not taken within `timeout`: nothing written) and
        `WriteOutcomeUnknown` (sent, COMMIT not confirmed within `timeout`).
        """
        pending = _Pending(tx)
        try:
            self._queue.put_nowait(pending)
        except asyncio.QueueFull:
            raise WriteRejected("the write queue is full; retry shortly") from None
        # One timer answers the request when its time is up (`_expire`). It replaces
        # `wait_for(shield(done))`, which cost two more futures, a callback chain and two more
        # event-loop turns per request: ~20 µs of the API's CPU per POST (issue #13). A caller
        # cancelled while waiting cancels `done`, which withdraws a request not yet taken.
        timer = asyncio.get_running_loop().call_later(self.timeout, self._expire, pending)
        try:
            return await pending.done
        finally:
            timer.cancel()

    def _expire(self, pending: _Pending) -> None:
        """Time is up: withdraw a request no committer took (`_take` skips a finished one), or
        tell the caller its batch was sent but not confirmed."""
        if pending.done.done():
            return
        if not pending.taken:
            pending.done.set_exception(
                WriteRejected(
                    f"the primary did not take the write within {self.timeout:g} s; "
                    "nothing was written, retry shortly"
                )
            )
            return
        pending.done.set_exception(
            WriteOutcomeUnknown(
                f"the commit was not confirmed within {self.timeout:g} s; it may or may not "
                "have been written: retry with an Idempotency-Key"
            )
        )

    def _take(self, pending: _Pending, batch: list[_Pending]) -> None:
        if not pending.done.done():  # a withdrawn request is not written
            pending.taken = True
            batch.append(pending)

    async def _commit_loop(self, slot: int = 0) -> None:
        while True:
            batch: list[_Pending] = []
            self._take(await self._queue.get(), batch)
            limit = self.max_batch if self.batching else 1
            while len(batch) < limit and not self._queue.empty():
                self._take(self._queue.get_nowait(), batch)
            if batch:
                await self._commit_batch(batch, slot)

    async def _commit_batch(self, batch: list[_Pending], slot: int) -> None:
        try:
            # a stalled server (SIGSTOP, a black hole) would hold this committer forever: give
            # up after twice the requests' own wait and reopen the connection (`timeout`, not
            # `wait_for`: no extra task per batch)
            async with asyncio.timeout(2 * self.timeout):
                results = await self._commit(batch, slot)
        except _NotBatchable:
            for pending in batch:
                await self._commit_batch([pending], slot)
        except TimeoutError:
            await self._outage(OSError("commit timed out"))
            for pending in batch:
                if not pending.done.done():
                    pending.done.set_exception(
                        WriteOutcomeUnknown("the commit was not confirmed; it may or may not exist")
                    )
        except Exception as exc:  # noqa: BLE001 - handed to every waiting request
            await self._outage(exc)
            if len(batch) > 1 and isinstance(exc, IntegrityError):
                # Only a unique external_id can collide: rows without one commit again as one
                # batch, rows with one alone, so one duplicate costs its neighbours one retry.
                plain = [p for p in batch if p.tx.external_id is None]
                keyed = [p for p in batch if p.tx.external_id is not None]
                if plain:
                    await self._commit_batch(plain, slot)
                for pending in keyed:
                    await self._commit_batch([pending], slot)
                return
            for pending in batch:
                if not pending.done.done():
                    pending.done.set_exception(translate(exc))
        else:
            for pending, result in zip(batch, results, strict=True):
                if not pending.done.done():
                    pending.done.set_result(result)

    async def _commit(self, batch: list[_Pending], slot: int) -> list[WriteResult]:
        """INSERT, then COMMIT and read its GTID: two round trips on the committer's connection.

        Each committer keeps one driver connection for its lifetime instead of taking one from
        the pool per batch: no pre-ping, no reset-on-return ROLLBACK, no ROLLBACK after reading
        the GTID, and no SQLAlchemy greenlet hop per statement. COMMIT and the GTID read go as
        one multi-statement query (the driver enables them), so a batch costs two round trips,
        not three (issue #13, session 8). The connection is reopened after any error and
        whenever the engine (the primary) changes. Driver errors are re-raised as SQLAlchemy's,
        so `is_outage` and `translate` see what they always saw. Once the COMMIT succeeded, a
        failure to read the GTID does not turn the rows' 201 into an error: they get no token.
        """
        sql = _INSERT + ", ".join([_ROW] * len(batch))
        params = tuple(p for pending in batch for p in _params(pending.tx))
        commit_then_token = "COMMIT; " + last_gtid_query(self.flavour).sql
        for attempt in (1, 2):
            conn, fresh = await self._raw_connection(slot)
            if len(batch) > 1 and not self.batching:
                raise _NotBatchable
            committing = committed = False
            gtid = None
            try:
                async with conn.cursor() as cur:
                    await cur.execute(sql, params)
                    first_id = int(cur.lastrowid)
                    committing = True
                    self.commits += 1
                    await cur.execute(commit_then_token)  # raises if the COMMIT failed
                    committed = True
                    await cur.nextset()
                    row = await cur.fetchone()
                    gtid = (row[0] if row else None) or None
            except (*_CONNECTION_ERRORS, asyncmy.errors.Error) as exc:
                self._drop_raw(slot)
                if committed:  # only the GTID read failed: the rows are in, without a token
                    return [WriteResult(first_id + i, None) for i in range(len(batch))]
                stale = isinstance(exc, _CONNECTION_ERRORS) and not fresh and not committing
                if stale and attempt == 1:
                    # a connection left stale by a server restart fails at the INSERT, before
                    # any COMMIT was sent: nothing is written, so one retry on a fresh
                    # connection replaces the pool's pre-ping round trip
                    continue
                raise DBAPIError.instance(sql, None, exc, asyncmy.errors.Error) from exc
            except BaseException:
                self._drop_raw(slot)
                raise
            return [WriteResult(first_id + i, gtid) for i in range(len(batch))]
        raise AssertionError("unreachable")

    async def _raw_connection(self, slot: int) -> tuple[Any, bool]:
        """The committer's connection and whether it was just opened."""
        url = self.engine.url
        held = self._raw.get(slot)
        if held is not None and held[0] == url:
            return held[1], False
        self._drop_raw(slot)
        try:
            conn = await asyncmy.connect(
                host=url.host,
                port=url.port or 3306,
                user=url.username,
                password=url.password,
                database=url.database,
                charset="utf8mb4",
                autocommit=False,
            )
            async with conn.cursor() as cur:
                await cur.execute("SELECT @@GLOBAL.innodb_autoinc_lock_mode")
                (mode,) = await cur.fetchone()
        except asyncmy.errors.Error as exc:
            raise DBAPIError.instance("connect", None, exc, asyncmy.errors.Error) from exc
        if self.batching != ids_are_consecutive(int(mode)):
            self.batching = ids_are_consecutive(int(mode))
            if not self.batching:
                log.error(
                    "the primary %s:%s has innodb_autoinc_lock_mode=%s: a multi-row INSERT may "
                    "not get consecutive ids, so writes are committed one row at a time; set "
                    "innodb_autoinc_lock_mode=1 in its configuration",
                    url.host,
                    url.port,
                    mode,
                )
        self._raw[slot] = (url, conn)
        return conn, True

    def _drop_raw(self, slot: int) -> None:
        held = self._raw.pop(slot, None)
        if held is not None:
            held[1].close()

    async def _last_gtid(self, conn: AsyncConnection) -> str | None:
        statement = last_gtid_query(self.flavour)
        gtid = (await conn.exec_driver_sql(statement.sql)).scalar()
        await conn.rollback()
        return gtid or None

    # --- idempotent path ---------------------------------------------------------------------
    async def write_idempotent(
        self, tx: NewTransaction, *, api_key_id: int, key: str, request_hash: str
    ) -> WriteResult:
        """Insert once per (API key, Idempotency-Key); replays return the first transaction.

        Bounded like `write`: past `timeout` the answer is `WriteOutcomeUnknown` (a retry with the
        same key is safe: it replays or inserts).
        """
        try:
            return await asyncio.wait_for(
                self._write_idempotent(
                    tx, api_key_id=api_key_id, key=key, request_hash=request_hash
                ),
                self.timeout,
            )
        except TimeoutError:
            raise WriteOutcomeUnknown(
                f"the write was not confirmed within {self.timeout:g} s; retry with the same "
                "Idempotency-Key"
            ) from None

    async def _write_idempotent(
        self, tx: NewTransaction, *, api_key_id: int, key: str, request_hash: str
    ) -> WriteResult:
        try:
            async with self.engine.connect() as conn:
                result = await conn.exec_driver_sql(_INSERT + _ROW, _params(tx))
                tx_id = int(result.lastrowid)
                await conn.execute(
                    sa.insert(idempotency_keys).values(
                        api_key_id=api_key_id,
                        idempotency_key=key,
                        request_hash=request_hash,
                        transaction_id=tx_id,
                        created_at=tx.created_at,
                    )
                )
                await conn.commit()
                try:
                    gtid = await self._last_gtid(conn)
                except DBAPIError:  # committed: answer without a token (see module docstring)
                    gtid = None
                return WriteResult(tx_id, gtid)
        except IntegrityError as exc:
            if "idempotency_keys" not in str(exc.orig) and "PRIMARY" not in str(exc.orig):
                translated = translate(exc)
                if not isinstance(translated, DuplicateExternalId):
                    raise translated from exc
                # A retry of a body with an `external_id` meets its own first row's unique
                # external_id before the idempotency row: replay when this key was used
                # (its row holds that external_id), else the external_id is someone else's.
                try:
                    return await self._replay(
                        api_key_id=api_key_id, key=key, request_hash=request_hash
                    )
                except _KeyUnused:
                    raise translated from exc
        except Exception as exc:
            await self._outage(exc)
            raise
        try:
            return await self._replay(api_key_id=api_key_id, key=key, request_hash=request_hash)
        except _KeyUnused:  # the first writer rolled back between our error and this read
            raise IdempotencyConflict(
                "the original request with this Idempotency-Key failed"
            ) from None

    async def _replay(self, *, api_key_id: int, key: str, request_hash: str) -> WriteResult:
        """The transaction this (API key, Idempotency-Key) created; `_KeyUnused` if none."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(idempotency_keys.c.request_hash, idempotency_keys.c.transaction_id)
                    .where(idempotency_keys.c.api_key_id == api_key_id)
                    .where(idempotency_keys.c.idempotency_key == key)
                )
            ).first()
            # for replays: the primary's position now covers the original commit
            gtid = await primary_position(conn, self.flavour)
        if row is None:
            raise _KeyUnused
        if row.request_hash != request_hash:
            raise IdempotencyConflict(
                "this Idempotency-Key was already used with a different request body"
            )
        return WriteResult(int(row.transaction_id), gtid, replayed=True)
