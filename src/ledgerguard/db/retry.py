"""Write transactions run again when InnoDB rolls them back as a deadlock victim.

Two writers of `fraud_scores` upsert rows whose primary keys interleave: the nightly run's
page threads (pages hold disjoint users, not disjoint id ranges) and the streaming scorer's
partitions. `INSERT ... ON DUPLICATE KEY UPDATE` locks the duplicate it finds and the gap
before it (next-key locks, taken for the duplicate check under READ COMMITTED too), so two
such transactions can each wait for the other. InnoDB then rolls one back (error 1213, or
1205 when a lock wait times out) and expects the application to run it again: found by `bench
analysis` at 13.4M rows, whose rerun with more rows stored (`store_min_score` 0.01) failed on
a deadlock between its two page threads (session 17).

`in_transaction` runs a unit of work in its own transaction and runs it again after such a
rollback, a few times with a short, growing, jittered pause. Only for work that can run twice:
the rolled-back attempt wrote nothing, so an idempotent upsert of a page of verdicts, or a
scorer batch with its checkpoint, is simply written by the next attempt.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

import pymysql
import sqlalchemy as sa

T = TypeVar("T")

log = logging.getLogger(__name__)

#: ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT: the transaction was rolled back, nothing written.
LOCK_CONFLICTS = frozenset({1213, 1205})
#: Attempts of one unit of work in all (the first one included).
ATTEMPTS = 5
#: Seconds of the first pause; the n-th pause is n times this, times 1-2 at random.
PAUSE_SECONDS = 0.05


def is_lock_conflict(exc: BaseException) -> bool:
    """Whether `exc` is InnoDB rolling the transaction back over a lock (raised by the driver
    itself, as a raw cursor does, or wrapped by SQLAlchemy)."""
    error = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
    return isinstance(error, pymysql.err.OperationalError) and bool(
        error.args and error.args[0] in LOCK_CONFLICTS
    )


def in_transaction(
    engine: sa.Engine,
    work: Callable[[sa.Connection], T],
    *,
    attempts: int = ATTEMPTS,
    pause: float = PAUSE_SECONDS,
) -> T:
    """`work(conn)` in one transaction of `engine`, committed; run again after a lock
    conflict, up to `attempts` times in all (the last conflict is raised)."""
    for attempt in range(1, attempts + 1):
        try:
            with engine.begin() as conn:
                return work(conn)
        except (pymysql.err.OperationalError, sa.exc.OperationalError) as exc:
            if attempt == attempts or not is_lock_conflict(exc):
                raise
            log.warning(
                "lock conflict, running the transaction again (%d of %d): %s",
                attempt + 1,
                attempts,
                exc,
            )
            time.sleep(pause * attempt * (1 + random.random()))
    raise AssertionError("unreachable")  # pragma: no cover
