"""One step of read-ahead: the next item of an iterator is produced in a background thread.

The fraud engine reads the next page of the replica while it scores this one: the server's
share of a read, and the driver waiting on its socket without the GIL, overlap the scoring.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def read_ahead_of(items: Iterator[T]) -> Iterator[T]:
    """`items`, each produced in a background thread while the caller holds the previous one.

    The producer owns the iterator (and so the replica connection) until it has stopped:
    leaving the loop early, or an error on either side, stops it after the item in hand and
    waits for it, so the connection is never used by two threads at once. An error of the
    producer is raised in the caller.
    """
    ready: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(kind: str, value: Any) -> bool:
        while not stop.is_set():
            try:
                ready.put((kind, value), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put("item", item):
                    return
                del item
            put("end", None)
        except Exception as exc:  # noqa: BLE001 -- handed to the caller, raised there
            put("error", exc)

    worker = threading.Thread(target=produce, name="replica-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            try:
                kind, value = ready.get(timeout=0.5)
            except queue.Empty:
                if worker.is_alive() or not ready.empty():
                    continue
                raise RuntimeError("the replica read-ahead thread ended without a result") from None
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
            del value
    finally:
        stop.set()
        worker.join()
        close = getattr(items, "close", None)
        if close is not None:
            close()
