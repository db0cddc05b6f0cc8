"""Which errors `db.retry` runs a transaction again for, and what the CLI says when it gives up.

The retry itself, on a real deadlock between two writers: `tests/integration/test_fraud_store.py`.
"""

from __future__ import annotations

import pymysql
import sqlalchemy as sa

from ledgerguard.cli.common import unreachable_message
from ledgerguard.db.retry import ATTEMPTS, is_lock_conflict


def test_deadlocks_and_lock_waits_are_conflicts_as_raised_and_as_wrapped():
    deadlock = pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock")
    wait = pymysql.err.OperationalError(1205, "Lock wait timeout exceeded")
    lost = pymysql.err.OperationalError(2013, "Lost connection to server during query")
    wrapped = sa.exc.OperationalError("INSERT ...", {}, deadlock)
    assert is_lock_conflict(deadlock) and is_lock_conflict(wait) and is_lock_conflict(wrapped)
    assert not is_lock_conflict(lost)
    assert not is_lock_conflict(sa.exc.OperationalError("SELECT 1", {}, lost))
    assert not is_lock_conflict(pymysql.err.IntegrityError(1213, "not an operational error"))


def test_a_conflict_that_outlasts_its_retries_is_not_called_an_outage():
    deadlock = pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock")
    message = unreachable_message(deadlock)
    assert f"{ATTEMPTS} times in a row" in message and "run the command again" in message
    assert "cannot be reached" not in message
