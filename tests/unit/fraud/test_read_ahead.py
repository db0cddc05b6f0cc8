"""`read_ahead_of`: the background reader hands items over in order, stops, and fails loud."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from ledgerguard.fraud.read_ahead import read_ahead_of


def test_items_arrive_in_order_and_are_produced_in_another_thread():
    threads: list[str] = []

    def produce() -> Iterator[int]:
        for i in range(50):
            threads.append(threading.current_thread().name)
            yield i

    assert list(read_ahead_of(produce())) == list(range(50))
    assert set(threads) == {"replica-read-ahead"}


def test_leaving_early_stops_the_producer_before_returning():
    produced: list[int] = []
    closed = threading.Event()

    def produce() -> Iterator[int]:
        try:
            for i in range(1_000):
                produced.append(i)
                yield i
        finally:
            closed.set()

    items = read_ahead_of(produce())
    assert [next(items), next(items)] == [0, 1]
    items.close()
    assert closed.is_set()  # the producer's iterator was closed, no thread left behind
    assert len(produced) <= 4  # at most one waiting and one in hand beyond what was taken
    assert not any(t.name == "replica-read-ahead" for t in threading.enumerate())


def test_an_error_of_the_producer_is_raised_in_the_caller():
    def produce() -> Iterator[int]:
        yield 1
        raise ConnectionError("replica went away")

    items = read_ahead_of(produce())
    assert next(items) == 1
    with pytest.raises(ConnectionError, match="replica went away"):
        next(items)
