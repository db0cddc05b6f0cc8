"""Administrative connections (root over the local socket) and the statements run through them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pymysql
import pymysql.cursors

from ledgerguard.cluster.errors import AccessDenied, ClusterError
from ledgerguard.cluster.spec import ServerSpec
from ledgerguard.db.dialect import Statement

_ACCESS_DENIED = 1045


@dataclass(frozen=True)
class Endpoint:
    """A server reached over TCP (Compose, remote hosts), as opposed to a local `ServerSpec`."""

    role: str
    host: str
    port: int


def reach(spec: ServerSpec) -> ServerSpec | Endpoint:
    """How to connect to `spec`: by its socket when this machine runs it (its datadir is here),
    over TCP otherwise (the Compose stack's containers, another host)."""
    return spec if spec.datadir.is_dir() else Endpoint(spec.role, spec.host, spec.port)


@contextmanager
def admin_connection(
    target: ServerSpec | Endpoint,
    *,
    password: str,
    user: str = "root",
    connect_timeout: float = 5,
    read_timeout: float = 60,
) -> Iterator[pymysql.connections.Connection]:
    """Root (or `user`, such as the backup account) on a local server's unix socket or on a TCP
    endpoint; autocommit, dict rows.

    Every read and write is bounded by `read_timeout`: a server that accepts the connection but
    never answers (SIGSTOP, a hung host) fails the command instead of hanging it.
    """
    where: dict[str, Any] = (
        {"unix_socket": str(target.socket)}
        if isinstance(target, ServerSpec)
        else {"host": target.host, "port": target.port}
    )
    try:
        conn = pymysql.connect(
            **where,
            user=user,
            password=password,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            write_timeout=read_timeout,
            autocommit=True,
            cursorclass=pymysql.cursors.DictCursor,
        )
    except pymysql.err.OperationalError as exc:
        if exc.args and exc.args[0] == _ACCESS_DENIED and user != "root":
            raise AccessDenied(
                f"{user} cannot log in to the {target.role}: its password differs from the "
                "configured one, or the account does not exist yet (`ledgerguard cluster up` "
                "creates and updates the accounts)"
            ) from exc
        if exc.args and exc.args[0] == _ACCESS_DENIED:
            raise AccessDenied(
                f"root cannot log in to the {target.role} with MYSQL_ROOT_PASSWORD from the "
                "environment/.env: it was provisioned with another password. Put the old "
                "password back, or wipe the cluster with `ledgerguard cluster reset`"
            ) from exc
        location = (
            target.socket if isinstance(target, ServerSpec) else f"{target.host}:{target.port}"
        )
        raise ClusterError(
            f"cannot connect to the {target.role} on {location}: {exc.args[-1]}; is it running? "
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
