"""Administrative connections (root over the local socket) and the statements run through them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pymysql
import pymysql.cursors

from ledgerguard.cluster.errors import AccessDenied, ClusterError
from ledgerguard.cluster.replication import Statement
from ledgerguard.cluster.spec import ServerSpec

_ACCESS_DENIED = 1045


@contextmanager
def admin_connection(
    spec: ServerSpec, *, password: str, connect_timeout: float = 5
) -> Iterator[pymysql.connections.Connection]:
    """Root on `spec`'s unix socket, autocommit, rows as dicts."""
    try:
        conn = pymysql.connect(
            unix_socket=str(spec.socket),
            user="root",
            password=password,
            connect_timeout=connect_timeout,
            autocommit=True,
            cursorclass=pymysql.cursors.DictCursor,
        )
    except pymysql.err.OperationalError as exc:
        if exc.args[0] == _ACCESS_DENIED:
            raise AccessDenied(
                f"root cannot log in to the {spec.role} with MYSQL_ROOT_PASSWORD from the "
                "environment/.env: it was provisioned with another password. Put the old "
                "password back, or wipe the cluster with `ledgerguard cluster reset`"
            ) from exc
        raise ClusterError(
            f"cannot connect to the {spec.role} on {spec.socket}: {exc.args[-1]}; is it running? "
            "(`ledgerguard cluster up`)"
        ) from exc
    try:
        yield conn
    finally:
        conn.close()


def run(conn: pymysql.connections.Connection, statement: Statement) -> list[dict[str, Any]]:
    """Execute one `Statement` and return its rows (empty for statements without a result).

    Parameters are always interpolated (an empty tuple too), so every statement spells a literal
    percent sign `%%`, whether or not it has parameters.
    """
    with conn.cursor() as cur:
        cur.execute(statement.sql, statement.params)
        return list(cur.fetchall()) if cur.description else []


def scalar(conn: pymysql.connections.Connection, statement: Statement) -> Any:
    """The first column of the first row, or None."""
    rows = run(conn, statement)
    return next(iter(rows[0].values())) if rows else None
