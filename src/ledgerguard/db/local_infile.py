"""`LOAD DATA LOCAL` that sends only the file the client named, never one the server asks for.

In the protocol it is the *server* that names the file to send (its request packet carries a
path), and PyMySQL opens whatever path arrives once `local_infile` is on: a server that is not
ours (a hijacked address, a rogue replica promoted by mistake) could ask for `~/.ssh/id_ed25519`
or `.env` in answer to any statement. PyMySQL has no option to confine it to a directory, so this
connection class checks the requested path against the one file the caller allowed for the
statement at hand (`allow_local_file`) and refuses anything else: it sends an empty file (which
keeps the protocol in step, so the server answers and the connection stays usable) and raises
`LocalFileRefused`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pymysql
from pymysql.connections import MySQLResult
from pymysql.protocol import LoadLocalPacketWrapper

#: MySQL's client error for a LOCAL INFILE request rejected by the client's restrictions.
CR_LOAD_DATA_LOCAL_INFILE_REJECTED = 2068


class LocalFileRefused(pymysql.err.OperationalError):
    """The server asked for a local file other than the one the client named; nothing was sent."""


class _ConfinedResult(MySQLResult):
    def _read_load_local_packet(self, first_packet: Any) -> None:
        conn: ConfinedLocalInfileConnection = self.connection
        requested = os.fsdecode(LoadLocalPacketWrapper(first_packet).filename)
        allowed = conn.allowed_local_file
        if allowed is not None and requested == allowed:
            super()._read_load_local_packet(first_packet)
            return
        conn.write_packet(b"")  # an empty file: the server finishes the statement with no rows
        try:
            reply = conn._read_packet()
            if reply.is_ok_packet():
                self._read_ok_packet(reply)
        except pymysql.err.MySQLError:
            pass  # the server's own complaint about the empty file; ours is what matters
        raise LocalFileRefused(
            CR_LOAD_DATA_LOCAL_INFILE_REJECTED,
            f"the server asked for the local file {requested!r}, but "
            + (f"only {allowed!r} was named" if allowed else "no local file was named")
            + "; refused, nothing sent (is this the server you meant to connect to?)",
        )


class ConfinedLocalInfileConnection(pymysql.connections.Connection):
    """A PyMySQL connection with `local_infile` on, confined to one file per statement."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["local_infile"] = True
        self.allowed_local_file: str | None = None
        super().__init__(*args, **kwargs)

    @contextmanager
    def allow_local_file(self, path: Path) -> Iterator[str]:
        """Within the block the server may read `path` (and nothing else); yields the exact
        path text to put in the `LOAD DATA LOCAL INFILE` statement."""
        self.allowed_local_file = str(path)
        try:
            yield self.allowed_local_file
        finally:
            self.allowed_local_file = None

    def _read_query_result(self, unbuffered: bool = False) -> int:
        # PyMySQL's own method, with the confined result class
        self._result = None
        result = _ConfinedResult(self)
        if unbuffered:
            result.init_unbuffered_query()
        else:
            result.read()
        self._result = result
        if result.server_status is not None:
            self.server_status = result.server_status
        return result.affected_rows
