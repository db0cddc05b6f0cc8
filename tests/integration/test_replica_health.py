"""`check_replica_fresh`: the GTID freshness rule against the real primary + replica."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ledgerguard.cluster.health import (
    IntervalNotOver,
    ReplicaNotFresh,
    ReplicaUnavailable,
    check_replica_fresh,
)
from ledgerguard.cluster.local import LocalCluster
from ledgerguard.settings import Settings
from tests.support import api_conn, free_ports, replica_sql_thread_stopped

PAST = datetime(2024, 1, 1, tzinfo=UTC)


def _write_row(settings: Settings) -> None:
    with api_conn(settings) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO transactions (user_id, amount, currency, occurred_at, created_at) "
            "VALUES (8000000001, 1.00, 'USD', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))"
        )


def test_a_caught_up_replica_is_fresh(healthy_cluster: LocalCluster, settings: Settings):
    _write_row(settings)
    freshness = check_replica_fresh(settings, until=PAST, timeout=30)
    assert freshness.interval_complete
    assert freshness.primary_gtid and freshness.replica_gtid
    assert freshness.newest_created_at is not None
    assert freshness.to_dict()["until"] == "2024-01-01T00:00:00+00:00"


def test_an_interval_that_has_not_ended_is_refused_unless_allowed(
    healthy_cluster: LocalCluster, settings: Settings
):
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    with pytest.raises(IntervalNotOver, match="not all written yet"):
        check_replica_fresh(settings, until=tomorrow, timeout=5)
    freshness = check_replica_fresh(settings, until=tomorrow, timeout=5, allow_open_interval=True)
    assert not freshness.interval_complete


def test_a_stopped_sql_thread_fails_with_the_reason(
    healthy_cluster: LocalCluster, settings: Settings
):
    with replica_sql_thread_stopped(healthy_cluster, settings):
        _write_row(settings)
        with pytest.raises(ReplicaNotFresh, match="SQL thread running: False"):
            check_replica_fresh(settings, until=PAST, timeout=1.5)
    assert check_replica_fresh(settings, until=PAST, timeout=30).replica_gtid


def test_an_unreachable_replica_is_reported(healthy_cluster: LocalCluster, settings: Settings):
    elsewhere = settings.model_copy(update={"replica_port": free_ports(1)[0]})
    with pytest.raises(ReplicaUnavailable, match="cannot query the replica"):
        check_replica_fresh(elsewhere, until=PAST, timeout=2)


def test_an_interval_ending_within_the_timeout_is_waited_for(
    healthy_cluster: LocalCluster, settings: Settings
):
    soon = datetime.now(UTC) + timedelta(seconds=1)
    freshness = check_replica_fresh(settings, until=soon, timeout=10)
    assert freshness.interval_complete
    assert freshness.primary_clock >= soon
