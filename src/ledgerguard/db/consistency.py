"""Read-your-writes on the replica: wait for a commit's GTID with a bound, and measure the gap."""

from __future__ import annotations

import re

from sqlalchemy.ext.asyncio import AsyncConnection

from ledgerguard.db.dialect import Flavour, binlog_gtids_query, wait_for_gtid
from ledgerguard.db.gtid import GtidSet

_MARIADB_GTID_LIST = re.compile(r"^\d+-\d+-\d+(,\d+-\d+-\d+)*$")


def valid_gtid(token: str, flavour: Flavour) -> bool:
    """Whether `token` is a well-formed GTID (list) of the flavour, before it reaches SQL."""
    if flavour is Flavour.MARIADB:
        return bool(_MARIADB_GTID_LIST.match(token))
    return bool(re.match(r"^[0-9a-fA-F:\-,\s]+$", token)) and len(token) < 4096


def position_covers(position: str | None, token: str) -> bool:
    """Whether a primary at `position` has committed everything `token` names (either flavour;
    False when either text is no GTID set)."""
    try:
        return GtidSet.parse(position or "").covers(GtidSet.parse(token))
    except ValueError:
        return False


async def primary_position(conn: AsyncConnection, flavour: Flavour) -> str | None:
    """The GTIDs the server behind `conn` has written (what a replay or a token is checked
    against); leaves no transaction open."""
    value = (await conn.exec_driver_sql(binlog_gtids_query(flavour).sql)).scalar()
    await conn.rollback()
    return value or None


async def replica_has(
    conn: AsyncConnection, *, flavour: Flavour, gtid: str, timeout_s: float
) -> bool:
    """Wait up to `timeout_s` for the replica to apply `gtid`; False on timeout."""
    statement = wait_for_gtid(flavour, gtid, timeout_s)
    value = (await conn.exec_driver_sql(statement.sql, statement.params)).scalar()
    return value == 0


def mariadb_positions(position: str) -> dict[str, int] | None:
    """Sequence number per replication domain of a MariaDB GTID position (`0-1-42,1-1-7`).

    None when it is not one (e.g. a MySQL UUID set).
    """
    try:
        gtids = GtidSet.parse(position)
    except ValueError:
        return None
    if gtids.flavour is Flavour.MYSQL:
        return None
    return {str(domain): gtid.seq for domain, gtid in gtids.mariadb_position.items()}


def gtid_sequence(position: str | None) -> int | None:
    """Sum of the sequence numbers of a MariaDB GTID position (`0-1-42,1-1-7` → 49)."""
    positions = None if position is None else mariadb_positions(position)
    return None if positions is None else sum(positions.values())


def gtid_gap(primary_pos: str | None, replica_pos: str | None) -> int | None:
    """Transactions the replica lacks, from MariaDB GTID positions (`domain-server-seq`, ...).

    Sums, per replication domain, the primary's sequence number minus the replica's. None when a
    position cannot be read (e.g. MySQL UUID sets, for which Prometheus' heartbeat lag is used).
    """
    if not primary_pos or replica_pos is None:
        return None
    primary, replica = mariadb_positions(primary_pos), mariadb_positions(replica_pos)
    if primary is None or replica is None:
        return None
    return sum(max(0, seq - replica.get(domain, 0)) for domain, seq in primary.items())
