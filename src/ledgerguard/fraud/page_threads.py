"""Pages of the nightly analysis scored on several threads at once, results in page order.

A page's scoring is mostly work that runs without the interpreter lock (the model's trees in
scikit-learn's compiled loop, NumPy's sorts, searches and sums, pandas' rolling median, the
driver waiting for the primary), so two pages scored on two threads keep both cores busy where
one page at a time left one idle for most of the run. Pages hold disjoint users and each is
written in its own transaction, so the order their verdicts reach the primary does not change
what is stored; the totals are added up in page order all the same.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def in_parallel(function: Callable[[T], R], items: Iterator[T], *, threads: int) -> Iterator[R]:
    """`function(item)` for every item, at most `threads` at once; results in `items`' order.

    The next item is taken only once fewer than `threads` are in flight, so at most `threads`
    items (pages: their frames) are alive here at a time. An error of `function` is raised here,
    after the calls already running have ended; items not yet started are dropped, and `items`
    is closed (a read-ahead generator then stops its thread).
    """
    if threads <= 1:
        for item in items:
            yield function(item)
            del item
        return
    running: deque[Future[R]] = deque()
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fraud-page") as pool:
        try:
            for item in items:
                running.append(pool.submit(function, item))
                del item
                if len(running) >= threads:
                    yield running.popleft().result()
            while running:
                yield running.popleft().result()
        finally:
            for future in running:
                future.cancel()
            close = getattr(items, "close", None)
            if close is not None:
                close()
