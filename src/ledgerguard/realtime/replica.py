"""The scorer's own connection to the replica, and the check it makes of it before it starts.

`replica_flavour` connects as the reading account (`LEDGERGUARD_REPLICA_*`), tells MariaDB
from MySQL (their GTIDs and binlog events differ) and refuses a replica that does not write
column names into row events (`binlog.check_row_metadata`), with a message saying what to do.
`replica_connection` is that plain connection, which `Scorer --rebuild` also reads the
transactions a purged binlog no longer covers with.

Its own module because it is asked before there is any scorer: at each start of the loop,
and by the benchmarks that read the binlog themselves (`bench scorer-cpu`,
`bench verdict-writes`), which need the flavour without the scoring loop.
"""

from __future__ import annotations

import pymysql

from ledgerguard.db.dialect import VERSION_QUERY, Flavour, detect_flavour
from ledgerguard.realtime.binlog import check_row_metadata
from ledgerguard.realtime.errors import ScorerError
from ledgerguard.settings import Settings


def replica_connection(settings: Settings) -> pymysql.connections.Connection:
    return pymysql.connect(
        host=settings.replica_host,
        port=settings.replica_port,
        user=settings.replica_user,
        password=settings.replica_password.get_secret_value(),
        database=settings.database,
        autocommit=True,
        connect_timeout=3,
    )


def replica_flavour(settings: Settings) -> Flavour:
    """The replica's flavour, once it is known to write column names into row events."""
    try:
        conn = replica_connection(settings)
    except pymysql.err.Error as exc:
        raise ScorerError(
            f"cannot reach the replica at {settings.replica_host}:"
            f"{settings.replica_port} ({exc}): start it (`ledgerguard cluster up`)"
        ) from None
    try:
        with conn.cursor() as cursor:
            cursor.execute(VERSION_QUERY.sql)
            flavour = detect_flavour(cursor.fetchone()[0])
        check_row_metadata(conn)
    finally:
        conn.close()
    return flavour
