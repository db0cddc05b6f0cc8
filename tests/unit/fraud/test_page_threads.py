"""`in_parallel`: pages scored on several threads, results in page order, bounded, fails loud."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from ledgerguard.fraud.page_threads import in_parallel


def test_results_come_in_item_order_from_several_threads():
    names: set[str] = set()

    def slow_first(item: int) -> int:
        names.add(threading.current_thread().name)
        time.sleep(0.02 if item % 3 == 0 else 0)  # later items finish before earlier ones
        return item * 10

    assert list(in_parallel(slow_first, iter(range(30)), threads=3)) == [i * 10 for i in range(30)]
    assert len(names) > 1 and all(name.startswith("fraud-page") for name in names)


def test_one_thread_runs_in_the_caller():
    names = {threading.current_thread().name}
    seen: set[str] = set()
    out = list(
        in_parallel(
            lambda i: seen.add(threading.current_thread().name) or i, iter([1, 2]), threads=1
        )
    )
    assert out == [1, 2] and seen == names


def test_at_most_threads_items_are_taken_before_the_first_result():
    taken: list[int] = []
    in_flight = 0
    most = 0
    lock = threading.Lock()

    def items() -> Iterator[int]:
        for i in range(20):
            taken.append(i)
            yield i

    def work(item: int) -> int:
        nonlocal in_flight, most
        with lock:
            in_flight += 1
            most = max(most, in_flight)
        time.sleep(0.005)
        with lock:
            in_flight -= 1
        return item

    results = in_parallel(work, items(), threads=2)
    assert next(results) == 0
    assert len(taken) == 2  # the third page is read only once the first is done
    assert list(results) == list(range(1, 20)) and most <= 2


def test_an_error_is_raised_in_the_caller_and_the_items_are_closed():
    closed = threading.Event()
    started: list[int] = []

    def items() -> Iterator[int]:
        try:
            yield from range(100)
        finally:
            closed.set()

    def work(item: int) -> int:
        started.append(item)
        if item == 3:
            raise ValueError("page 3 is bad")
        return item

    results = in_parallel(work, items(), threads=2)
    with pytest.raises(ValueError, match="page 3 is bad"):
        list(results)
    assert closed.is_set() and max(started) <= 5  # nothing much started after the failure
    assert not any(t.name.startswith("fraud-page") for t in threading.enumerate())
