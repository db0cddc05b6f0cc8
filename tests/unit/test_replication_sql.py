"""The replication SQL of both flavours (the MySQL path runs for real only in Compose)."""

from __future__ import annotations

import pytest

from ledgerguard.cluster.replication import (
    point_replica_at,
    server_options,
    start_replica,
    stop_replica,
)
from ledgerguard.db.dialect import (
    Flavour,
    detect_flavour,
    executed_gtids_query,
    parse_replica_status,
    replica_status_query,
    wait_for_gtid,
)


@pytest.mark.parametrize(
    ("version", "flavour"),
    [
        ("10.11.19-MariaDB-0+deb12u1-log", Flavour.MARIADB),
        ("11.4.2-MariaDB", Flavour.MARIADB),
        ("8.4.3", Flavour.MYSQL),
        ("8.0.39-commercial", Flavour.MYSQL),
    ],
)
def test_detect_flavour(version: str, flavour: Flavour):
    assert detect_flavour(version) is flavour


def test_mariadb_points_by_gtid_slave_pos():
    stmt = point_replica_at(Flavour.MARIADB, host="db-1", port=3306, user="repl", password="pw")
    assert stmt.sql.startswith("CHANGE MASTER TO")
    assert "MASTER_USE_GTID=slave_pos" in stmt.sql
    assert "pw" not in stmt.sql  # the password is a parameter, never spliced into SQL
    assert stmt.params == ("db-1", 3306, "repl", "pw", 5)
    assert start_replica(Flavour.MARIADB).sql == "START SLAVE"
    assert stop_replica(Flavour.MARIADB).sql == "STOP SLAVE"
    assert replica_status_query(Flavour.MARIADB).sql == "SHOW SLAVE STATUS"
    assert "gtid_current_pos" in executed_gtids_query(Flavour.MARIADB).sql
    assert "MASTER_GTID_WAIT" in wait_for_gtid(Flavour.MARIADB, "0-1-5", 2).sql


def test_mysql_points_by_source_auto_position():
    stmt = point_replica_at(Flavour.MYSQL, host="primary", port=3306, user="repl", password="pw")
    assert stmt.sql.startswith("CHANGE REPLICATION SOURCE TO")
    assert "SOURCE_AUTO_POSITION=1" in stmt.sql and "MASTER" not in stmt.sql
    assert start_replica(Flavour.MYSQL).sql == "START REPLICA"
    assert replica_status_query(Flavour.MYSQL).sql == "SHOW REPLICA STATUS"
    assert "gtid_executed" in executed_gtids_query(Flavour.MYSQL).sql
    assert "WAIT_FOR_EXECUTED_GTID_SET" in wait_for_gtid(Flavour.MYSQL, "uuid:1-5", 2).sql
    options = server_options(Flavour.MYSQL)
    assert options["gtid_mode"] == "ON" and options["enforce_gtid_consistency"] == "ON"


def test_hosts_with_sql_in_them_are_refused():
    with pytest.raises(ValueError, match="host"):
        point_replica_at(Flavour.MARIADB, host="x'; DROP", port=1, user="u", password="p")


def test_parse_mysql_status_row():
    row = {
        "Source_Host": "primary",
        "Source_Port": 3306,
        "Replica_IO_Running": "Yes",
        "Replica_SQL_Running": "No",
        "Seconds_Behind_Source": None,
        "Last_IO_Error": "",
        "Last_SQL_Error": "Duplicate entry",
        "Retrieved_Gtid_Set": "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5",
    }
    status = parse_replica_status(Flavour.MYSQL, row)
    assert status.configured and status.io_running and not status.sql_running
    assert not status.healthy and status.source == "primary:3306"
    assert status.last_sql_error == "Duplicate entry" and status.seconds_behind is None


def test_parse_mariadb_status_row_and_unconfigured():
    assert not parse_replica_status(Flavour.MARIADB, None).configured
    row = {
        "Master_Host": "127.0.0.1",
        "Master_Port": 3306,
        "Slave_IO_Running": "Yes",
        "Slave_SQL_Running": "Yes",
        "Seconds_Behind_Master": 0,
        "Gtid_IO_Pos": "0-1-42",
    }
    status = parse_replica_status(Flavour.MARIADB, row)
    assert status.healthy and status.seconds_behind == 0 and status.gtid_io_pos == "0-1-42"


def test_semi_sync_options_per_flavour():
    from ledgerguard.cluster.replication import semi_sync_options

    mariadb = semi_sync_options(Flavour.MARIADB, primary=True, timeout_ms=1000)
    assert mariadb["rpl_semi_sync_master_enabled"] == "ON"
    assert mariadb["rpl_semi_sync_master_wait_point"] == "AFTER_SYNC"
    mysql = semi_sync_options(Flavour.MYSQL, primary=True, timeout_ms=1000)
    assert mysql["rpl_semi_sync_source_enabled"] == "ON"
    assert "rpl_semi_sync_replica_enabled" in semi_sync_options(
        Flavour.MYSQL, primary=False, timeout_ms=1000
    )


def test_compose_mysql_configs_use_the_flavour_options():
    """deploy/mysql/*.cnf carry exactly what `semi_sync_options(MYSQL)` says."""
    from pathlib import Path

    from ledgerguard.cluster.replication import semi_sync_options

    deploy = Path(__file__).resolve().parents[2] / "deploy" / "mysql"
    for name, primary in (("primary.cnf", True), ("replica.cnf", False)):
        text = (deploy / name).read_text()
        for key, value in semi_sync_options(
            Flavour.MYSQL, primary=primary, timeout_ms=1000
        ).items():
            assert f"{key} = {value}" in text, (name, key)
        for key, value in server_options(Flavour.MYSQL).items():
            assert f"{key} = {value}" in text, (name, key)


def test_position_queries_of_both_flavours():
    from ledgerguard.db.dialect import applied_gtids_query, binlog_gtids_query

    assert binlog_gtids_query(Flavour.MARIADB).sql == "SELECT @@GLOBAL.gtid_binlog_pos"
    assert applied_gtids_query(Flavour.MARIADB).sql == "SELECT @@GLOBAL.gtid_slave_pos"
    for query in (binlog_gtids_query, applied_gtids_query):
        assert query(Flavour.MYSQL).sql == "SELECT @@GLOBAL.gtid_executed"


def test_only_mariadb_seeds_its_replica_position():
    from ledgerguard.cluster.replication import start_after_own_history

    statement = start_after_own_history(Flavour.MARIADB)
    assert statement is not None and "gtid_slave_pos" in statement.sql
    assert start_after_own_history(Flavour.MYSQL) is None
