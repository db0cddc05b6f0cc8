"""The group-commit writer against the real primary: bounded queue, bounded wait, honest answers."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ledgerguard.cluster.local import LocalCluster
from ledgerguard.db.dialect import Flavour
from ledgerguard.db.engines import primary_engine
from ledgerguard.db.transactions import NewTransaction
from ledgerguard.db.write_errors import DuplicateExternalId, WriteRejected
from ledgerguard.db.writer import TransactionWriter
from ledgerguard.settings import Settings
from tests.support import connect


def _tx(user_id: int, external_id: str | None = None) -> NewTransaction:
    now = datetime.now(UTC)
    return NewTransaction(
        user_id=user_id,
        amount=Decimal("1.00"),
        currency="USD",
        occurred_at=now,
        created_at=now,
        external_id=external_id,
    )


def _stored(settings: Settings, user_ids: list[int]) -> int:
    conn = connect(
        settings,
        "primary",
        user=settings.api_db_user,
        password=settings.api_db_password.get_secret_value(),
    )
    with conn, conn.cursor() as cur:
        marks = ", ".join(["%s"] * len(user_ids))
        cur.execute(f"SELECT COUNT(*) FROM transactions WHERE user_id IN ({marks})", user_ids)
        return int(cur.fetchone()[0])


def _users(count: int) -> list[int]:
    base = 2 * 10**12 + uuid.uuid4().int % 10**6 * 10**4
    return [base + n for n in range(count)]


def test_one_duplicate_external_id_does_not_split_the_batch(
    healthy_cluster: LocalCluster, settings: Settings
):
    taken = f"dup-{uuid.uuid4().hex[:12]}"
    users = _users(50)

    async def main() -> tuple[list[object], int]:
        engine = primary_engine(settings, pool_size=2)
        writer = TransactionWriter(lambda: engine, committers=1)
        try:
            await writer.start()
            await writer.write(_tx(users[0], taken))
            await writer.stop()
            before = writer.commits
            # queued before the committer starts: one batch of 49, one of them a duplicate
            calls = [asyncio.create_task(writer.write(_tx(u))) for u in users[1:-1]]
            calls.append(asyncio.create_task(writer.write(_tx(users[-1], taken))))
            await asyncio.sleep(0)
            await writer.start()
            results = await asyncio.gather(*calls, return_exceptions=True)
            return results, writer.commits - before
        finally:
            await writer.stop()
            await engine.dispose()

    results, commits = asyncio.run(main())
    assert isinstance(results[-1], DuplicateExternalId), results[-1]
    assert not [r for r in results[:-1] if isinstance(r, BaseException)]
    assert commits <= 2, f"{commits} COMMITs for one batch with one duplicate"
    assert _stored(settings, users) == 49


def test_full_queue_and_expired_wait_answer_rejected_and_write_nothing(
    healthy_cluster: LocalCluster, settings: Settings
):
    users = _users(3)

    async def main() -> list[object]:
        engine = primary_engine(settings, pool_size=1)
        writer = TransactionWriter(lambda: engine, queue_size=2, timeout=0.3)
        try:
            # no committer yet: the primary "stalls", the queue holds two and refuses a third
            waiting = [asyncio.create_task(writer.write(_tx(u))) for u in users[:2]]
            await asyncio.sleep(0)
            with pytest.raises(WriteRejected, match="queue is full"):
                await writer.write(_tx(users[2]))
            results = await asyncio.gather(*waiting, return_exceptions=True)
            await writer.start()  # the withdrawn requests must not be written now
            await asyncio.sleep(0.3)
            return results
        finally:
            await writer.stop()
            await engine.dispose()

    results = asyncio.run(main())
    assert all(isinstance(r, WriteRejected) for r in results), results
    assert _stored(settings, users) == 0


def test_committed_row_is_acknowledged_when_reading_the_gtid_fails(
    healthy_cluster: LocalCluster, settings: Settings
):
    (user,) = _users(1)

    async def main() -> object:
        engine = primary_engine(settings, pool_size=1)
        # the MySQL token query fails on MariaDB: the GTID read fails after a good COMMIT
        writer = TransactionWriter(lambda: engine, flavour=lambda: Flavour.MYSQL)
        try:
            await writer.start()
            return await writer.write(_tx(user))
        finally:
            await writer.stop()
            await engine.dispose()

    result = asyncio.run(main())
    assert result.transaction_id > 0 and result.gtid is None
    assert _stored(settings, [user]) == 1


def test_writer_batches_only_where_ids_are_consecutive(
    healthy_cluster: LocalCluster, settings: Settings
):
    from ledgerguard.db.writer import ids_are_consecutive

    assert [ids_are_consecutive(mode) for mode in (0, 1, 2)] == [True, True, False]

    async def main() -> bool:
        engine = primary_engine(settings, pool_size=1)
        writer = TransactionWriter(lambda: engine)
        writer.batching = False  # as if the last primary had mode 2: the real one says 1
        try:
            await writer.start()
            await writer.write(_tx(_users(1)[0]))
            return writer.batching
        finally:
            await writer.stop()
            await engine.dispose()

    assert asyncio.run(main()) is True
