"""The local cluster against real MariaDB processes: replication, privileges, restarts."""

from __future__ import annotations

import pymysql
import pytest

from ledgerguard.cluster.admin import admin_connection, run
from ledgerguard.cluster.errors import ReplicationError
from ledgerguard.cluster.local import LocalCluster
from ledgerguard.db.consistency import gtid_gap
from ledgerguard.db.dialect import Statement
from ledgerguard.settings import Settings
from tests.support import analytics_conn, api_conn, connect

INSERT = (
    "INSERT INTO transactions (user_id, amount, currency, occurred_at, created_at) "
    "VALUES (%s, %s, %s, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))"
)


def _count(conn: pymysql.connections.Connection, user_id: int) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM transactions WHERE user_id = %s", (user_id,))
        return cur.fetchone()[0]


def test_write_on_primary_appears_on_replica(healthy_cluster: LocalCluster, settings: Settings):
    with api_conn(settings) as conn, conn.cursor() as cur:
        cur.execute(INSERT, (9_000_001, "15000.00", "USD"))
        row_id = cur.lastrowid
    healthy_cluster.wait_for_replica(timeout=10)
    with analytics_conn(settings) as conn, conn.cursor() as cur:
        cur.execute("SELECT user_id, amount, currency FROM transactions WHERE id = %s", (row_id,))
        assert cur.fetchone() == (9_000_001, pytest.approx(15000), "USD")
    healthy_cluster.wait_for_replica(timeout=10)
    status = healthy_cluster.status()
    assert status.healthy
    # the heartbeat commits every second, so positions converge to within a transaction or two
    gap = gtid_gap(status.primary.gtid_binlog_pos, status.replica.gtid_executed)
    assert gap is not None and gap <= 2


def test_replica_refuses_application_writes(healthy_cluster: LocalCluster, settings: Settings):
    for conn in (api_conn(settings, "replica"), analytics_conn(settings, "replica")):
        with conn, conn.cursor() as cur, pytest.raises(pymysql.MySQLError) as info:
            cur.execute(INSERT, (9_000_002, "1.00", "USD"))
        assert info.value.args[0] in (1142, 1290)  # no INSERT privilege / read-only server


@pytest.mark.parametrize(
    "statement",
    [
        "DROP TABLE transactions",
        "ALTER TABLE transactions ADD COLUMN x INT",
        "CREATE TABLE t_evil (id INT)",
        "DELETE FROM transactions",
        "GRANT SELECT ON ledgerguard.* TO 'app_user'@'%'",
    ],
)
def test_api_user_has_no_ddl_or_grant(healthy_cluster: LocalCluster, settings: Settings, statement):
    with (
        api_conn(settings) as conn,
        conn.cursor() as cur,
        pytest.raises(pymysql.MySQLError) as info,
    ):
        cur.execute(statement)
    assert info.value.args[0] in (1142, 1044, 1227)  # command denied / access denied


def test_app_user_cannot_write_even_on_primary(healthy_cluster: LocalCluster, settings: Settings):
    with analytics_conn(settings, "primary") as conn, conn.cursor() as cur:
        with pytest.raises(pymysql.MySQLError) as info:
            cur.execute(INSERT, (9_000_003, "1.00", "USD"))
        assert info.value.args[0] == 1142
        cur.execute("SELECT COUNT(*) FROM transactions")  # reading is allowed


def test_replica_catches_up_by_gtid_after_being_stopped(
    healthy_cluster: LocalCluster, settings: Settings
):
    replica = healthy_cluster.server("replica")
    replica.stop(root_password=healthy_cluster.root_password)
    assert not replica.is_running()
    rows = [(9_000_004, f"{i}.25", "EUR") for i in range(1, 10_001)]
    with api_conn(settings) as conn, conn.cursor() as cur:
        conn.begin()
        cur.executemany(INSERT, rows)
        conn.commit()
    healthy_cluster.up()
    healthy_cluster.wait_for_replica(timeout=60)
    with analytics_conn(settings) as conn:
        assert _count(conn, 9_000_004) == 10_000
    assert healthy_cluster.status().healthy


def test_down_and_up_keep_the_data(healthy_cluster: LocalCluster, settings: Settings):
    with api_conn(settings) as conn, conn.cursor() as cur:
        cur.execute(INSERT, (9_000_005, "42.00", "GBP"))
    healthy_cluster.wait_for_replica(timeout=10)
    assert healthy_cluster.down() == ["replica", "primary"]
    assert not healthy_cluster.status().primary.up
    result = healthy_cluster.up()
    assert result.started == ["primary", "replica"] and not result.created
    for role, conn in (("primary", api_conn(settings)), ("replica", analytics_conn(settings))):
        with conn:
            assert _count(conn, 9_000_005) == 1, role
    assert healthy_cluster.status().healthy


def test_replica_that_cannot_connect_is_reported(healthy_cluster: LocalCluster, settings: Settings):
    """Point the replica at a dead port: waiting on it fails with the IO thread's error."""
    replica = healthy_cluster.specs["replica"]
    with admin_connection(replica, password=healthy_cluster.root_password) as conn:
        run(conn, Statement("STOP SLAVE"))
        run(conn, Statement("CHANGE MASTER TO MASTER_PORT=%s, MASTER_CONNECT_RETRY=1", (1,)))
        run(conn, Statement("START SLAVE"))
    try:
        with api_conn(settings) as conn, conn.cursor() as cur:
            cur.execute(INSERT, (9_000_006, "1.00", "USD"))
        with pytest.raises(ReplicationError, match="IO running: False"):
            healthy_cluster.wait_for_replica(timeout=5)
        status = healthy_cluster.status()
        assert not status.healthy
        assert status.replica.replication and status.replica.replication.last_io_error
    finally:
        with admin_connection(replica, password=healthy_cluster.root_password) as conn:
            run(conn, Statement("STOP SLAVE"))
            run(
                conn,
                Statement(
                    "CHANGE MASTER TO MASTER_PORT=%s", (healthy_cluster.specs["primary"].port,)
                ),
            )
            run(conn, Statement("START SLAVE"))
    healthy_cluster.wait_for_replica(timeout=30)


def test_root_is_local_only(healthy_cluster: LocalCluster, settings: Settings):
    with admin_connection(
        healthy_cluster.specs["primary"], password=healthy_cluster.root_password
    ) as c:
        hosts = {
            row["Host"]
            for row in run(c, Statement("SELECT Host FROM mysql.user WHERE User='root'"))
        }
    assert hosts == {"localhost", "127.0.0.1"}
    with pytest.raises(pymysql.MySQLError):
        connect(settings, "primary", user="root", password="wrong", database=False)
