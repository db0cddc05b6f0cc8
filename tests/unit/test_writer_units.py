"""The write path's bounded wait, without a server: no committer runs, so nothing is ever
committed and every outcome comes from the request's own timer (`TransactionWriter._expire`)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from ledgerguard.db.transactions import NewTransaction
from ledgerguard.db.write_errors import WriteOutcomeUnknown, WriteRejected
from ledgerguard.db.writer import TransactionWriter, _Pending, datetime_text
from ledgerguard.load.bench.ingest import HOT_PATH_PACKAGES, package_versions, rows_per_commit


def _tx() -> NewTransaction:
    now = datetime.now(UTC)
    return NewTransaction(
        user_id=1, amount=Decimal("1.00"), currency="USD", occurred_at=now, created_at=now
    )


def _writer() -> TransactionWriter:
    def no_engine() -> object:
        raise AssertionError("no committer runs in these tests")

    return TransactionWriter(no_engine, timeout=0.05)  # type: ignore[arg-type]


def test_a_request_nobody_took_is_withdrawn_when_its_time_is_up():
    async def main() -> tuple[_Pending, pytest.ExceptionInfo[WriteRejected]]:
        writer = _writer()
        with pytest.raises(WriteRejected, match="nothing was written") as refused:
            await writer.write(_tx())
        pending = writer._queue.get_nowait()
        return pending, refused

    pending, _ = asyncio.run(main())
    batch: list[_Pending] = []
    TransactionWriter._take(_writer(), pending, batch)
    assert batch == [] and not pending.taken  # a committer arriving late skips it


def test_a_request_taken_but_not_confirmed_is_outcome_unknown():
    async def main() -> None:
        writer = _writer()
        waiting = asyncio.create_task(writer.write(_tx()))
        await asyncio.sleep(0)
        batch: list[_Pending] = []
        writer._take(writer._queue.get_nowait(), batch)  # a committer sent it, no answer yet
        assert batch and batch[0].taken
        with pytest.raises(WriteOutcomeUnknown, match="may or may not"):
            await waiting

    asyncio.run(main())


def test_an_answer_before_the_deadline_wins_and_the_timer_is_harmless():
    async def main() -> object:
        writer = _writer()
        waiting = asyncio.create_task(writer.write(_tx()))
        await asyncio.sleep(0)
        pending = writer._queue.get_nowait()
        pending.taken = True
        pending.done.set_result("committed")
        result = await waiting
        await asyncio.sleep(0.1)  # past the deadline: the cancelled timer must not fire
        assert pending.done.result() == "committed"
        return result

    assert asyncio.run(main()) == "committed"


def test_bench_records_library_versions_and_rows_per_commit():
    versions = package_versions()
    assert set(versions) == set(HOT_PATH_PACKAGES)
    assert versions["fastapi"] and versions["uvloop"]  # installed with the package
    assert rows_per_commit(100, {"acknowledged_commits": 15, "unacknowledged_commits": 5}) == 5.0
    assert rows_per_commit(100, {"acknowledged_commits": 0}) is None
    assert rows_per_commit(100, {}) is None


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 11, 29, 14, 0, 5, 123456, tzinfo=UTC),
        datetime(2026, 11, 29, 14, 0, 5, tzinfo=UTC),  # no fraction: none written either
        datetime(2000, 1, 1, tzinfo=timezone(timedelta(hours=2))),  # written in UTC
    ],
)
def test_datetimes_go_to_the_driver_as_the_literal_it_writes_for_them(moment: datetime):
    from asyncmy.converters import escape_item

    text = datetime_text(moment)
    naive = moment.astimezone(UTC).replace(tzinfo=None)
    assert escape_item(text, "utf8mb4") == escape_item(naive, "utf8mb4")
