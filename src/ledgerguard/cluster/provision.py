"""Accounts, privileges and the application database.

Least privilege, one account per job (passwords come from settings, never from code):

=================  ====================================================  ==========================
account            privileges                                            used by
=================  ====================================================  ==========================
root@localhost     everything, local socket / 127.0.0.1 only             `ledgerguard cluster ...`
repl_user@%        REPLICATION SLAVE                                     the replica's IO thread
api_user@%         SELECT, INSERT, UPDATE on the application schema      the API, on the primary
migrate_user@%     DDL on the application schema (no GRANT)              Alembic migrations
app_user@%         SELECT on the application schema                      analytics, on the replica
api_user@%         SELECT, INSERT (no UPDATE/DELETE) on `<db>_audit`     the audit trail (append-only)
migrate_user@%     DDL + SELECT, INSERT on `<db>_audit` (no UPDATE)      audit_log's migration, CLI
monitor_user@%     PROCESS, REPLICATION CLIENT, SLAVE MONITOR (MariaDB),  mysqld-exporter (both)
                   SELECT on
                   performance_schema and on the `heartbeat` database
backup_user@%      RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR and      `backup create/verify`,
                   SLAVE MONITOR (MariaDB; MySQL: REPLICATION CLIENT),   the binlog archiver,
                   REPLICATION SLAVE; SELECT, SHOW VIEW, TRIGGER, EVENT  `00_nightly_backup`
                   on the application, audit and `heartbeat` databases
=================  ====================================================  ==========================

The backup account is what mariadb-backup needs (RELOAD for its backup locks, PROCESS, LOCK
TABLES, BINLOG MONITOR for the binlog position, SLAVE MONITOR for `--slave-info`), what a
logical dump needs (SELECT, SHOW VIEW, TRIGGER, EVENT on what it dumps; RELOAD for the brief
global lock that pins the binlog position), what the binlog archiver needs (REPLICATION SLAVE to
stream, BINLOG MONITOR for `SHOW BINARY LOGS`) and what `backup verify` needs to compare a
restored copy with the replica (REPLICATION SLAVE for the copy to follow it, SELECT). It cannot
write, change replication or read `mysql.*` (password hashes), so the nightly backup DAG runs
without root's or the replication account's secret.

The root password is set on each server locally (`sql_log_bin=0`); every other account and the
database are created on the primary only, with the binlog on, so they reach the replica through
replication like any other change. All statements are idempotent (`IF NOT EXISTS`, `ALTER USER`
re-applies a changed password), so `cluster up` can run them every time.
"""

from __future__ import annotations

import re

import pymysql

from ledgerguard.cluster.admin import run, scalar
from ledgerguard.cluster.errors import ClusterError
from ledgerguard.cluster.heartbeat import DATABASE as HEARTBEAT_DATABASE
from ledgerguard.db.dialect import VERSION_QUERY, Flavour, Statement, detect_flavour
from ledgerguard.db.tables import audit_schema
from ledgerguard.settings import Settings

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")


def _name(value: str) -> str:
    if not _NAME.match(value):
        raise ClusterError(
            f"{value!r} is not a valid account or database name (letters, digits, _)"
        )
    return value


def account_grants(
    settings: Settings, flavour: Flavour = Flavour.MARIADB
) -> list[tuple[str, str, list[str]]]:
    """(user, password, privilege clauses) for every application account.

    MariaDB 10.5+ split replication monitoring out of `REPLICATION CLIENT` (now an alias of
    `BINLOG MONITOR`): `SHOW SLAVE STATUS` needs `SLAVE MONITOR`, which MySQL does not know.
    """
    db = _name(settings.database)
    audit = _name(audit_schema(db))
    monitor = "PROCESS, REPLICATION CLIENT" + (
        ", SLAVE MONITOR" if flavour is Flavour.MARIADB else ""
    )
    backup = "RELOAD, PROCESS, LOCK TABLES, REPLICATION SLAVE, " + (
        "BINLOG MONITOR, SLAVE MONITOR" if flavour is Flavour.MARIADB else "REPLICATION CLIENT"
    )
    dumped = "SELECT, SHOW VIEW, TRIGGER, EVENT"
    return [
        (
            settings.repl_user,
            settings.repl_password.get_secret_value(),
            ["REPLICATION SLAVE ON *.*"],
        ),
        (
            settings.api_db_user,
            settings.api_db_password.get_secret_value(),
            [f"SELECT, INSERT, UPDATE ON `{db}`.*", f"SELECT, INSERT ON `{audit}`.*"],
        ),
        (
            settings.migrate_user,
            settings.migrate_password.get_secret_value(),
            [
                "SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, DROP, INDEX, REFERENCES, "
                f"CREATE VIEW, SHOW VIEW, TRIGGER, EVENT ON `{db}`.*",
                f"SELECT, INSERT, CREATE, ALTER, DROP, INDEX ON `{audit}`.*",
            ],
        ),
        (
            settings.replica_user,
            settings.replica_password.get_secret_value(),
            [f"SELECT, SHOW VIEW ON `{db}`.*", f"SELECT ON `{audit}`.*"],
        ),
        (
            settings.monitor_user,
            settings.monitor_password.get_secret_value(),
            [
                f"{monitor} ON *.*",
                "SELECT ON performance_schema.*",
                "SELECT ON `heartbeat`.*",
            ],
        ),
        (
            settings.backup_user,
            settings.backup_password.get_secret_value(),
            [
                f"{backup} ON *.*",
                *(f"{dumped} ON `{name}`.*" for name in (db, audit, HEARTBEAT_DATABASE)),
            ],
        ),
    ]


def secure_root(conn: pymysql.connections.Connection, *, password: str) -> None:
    """Give root its password and drop the install's extra root rows, on this server only.

    `mariadb-install-db` creates password-less root@localhost, @127.0.0.1, @::1 and @<hostname>;
    we keep the first two (socket and loopback TCP) and drop the rest. `sql_log_bin=0` keeps this
    out of the binlog: each server has its own root.
    """
    run(conn, Statement("SET SESSION sql_log_bin = 0"))
    try:
        rows = run(conn, Statement("SELECT Host FROM mysql.user WHERE User = 'root'"))
        for row in rows:
            host = row["Host"]
            if host in ("localhost", "127.0.0.1"):
                run(conn, Statement("ALTER USER 'root'@%s IDENTIFIED BY %s", (host, password)))
            else:
                run(conn, Statement("DROP USER IF EXISTS 'root'@%s", (host,)))
        run(conn, Statement("DROP USER IF EXISTS ''@'localhost'"))
    finally:
        run(conn, Statement("SET SESSION sql_log_bin = 1"))


def provision_primary(conn: pymysql.connections.Connection, settings: Settings) -> None:
    """Create the database and the application accounts on the primary (replicated)."""
    db = _name(settings.database)
    for name in (db, _name(audit_schema(db))):
        run(
            conn,
            Statement(
                f"CREATE DATABASE IF NOT EXISTS `{name}` "
                "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            ),
        )
    flavour = detect_flavour(scalar(conn, VERSION_QUERY) or "")
    for user, password, clauses in account_grants(settings, flavour):
        user = _name(user)
        run(
            conn,
            Statement(f"CREATE USER IF NOT EXISTS '{user}'@'%%' IDENTIFIED BY %s", (password,)),
        )
        run(conn, Statement(f"ALTER USER '{user}'@'%%' IDENTIFIED BY %s", (password,)))
        for privileges in clauses:
            run(conn, Statement(f"GRANT {privileges} TO '{user}'@'%%'"))
