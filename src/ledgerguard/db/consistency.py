"""Read-your-writes on the replica: wait for a commit's GTID with a bound, and measure the gap."""

from __future__ import annotations

import re

from sqlalchemy.ext.asyncio import AsyncConnection

from ledgerguard.cluster.replication import Flavour, wait_for_gtid

_MARIADB_GTID_LIST = re.compile(r"^\d+-\d+-\d+(,\d+-\d+-\d+)*$")


def valid_gtid(token: str, flavour: Flavour) -> bool:
    """Whether `token` is a well-formed GTID (list) of the flavour, before it reaches SQL."""
    if flavour is Flavour.MARIADB:
        return bool(_MARIADB_GTID_LIST.match(token))
    return bool(re.match(r"^[0-9a-fA-F:\-,\s]+$", token)) and len(token) < 4096


async def replica_has(
    conn: AsyncConnection, *, flavour: Flavour, gtid: str, timeout_s: float
) -> bool:
    """Wait up to `timeout_s` for the replica to apply `gtid`; False on timeout."""
    statement = wait_for_gtid(flavour, gtid, timeout_s)
    value = (await conn.exec_driver_sql(statement.sql, statement.params)).scalar()
    return value == 0


def gtid_gap(primary_pos: str | None, replica_pos: str | None) -> int | None:
    """Transactions the replica lacks, from MariaDB GTID positions (`domain-server-seq`, ...).

    Sums, per replication domain, the primary's sequence number minus the replica's. None when a
    position cannot be read (e.g. MySQL UUID sets, for which Prometheus' heartbeat lag is used).
    """
    if not primary_pos or replica_pos is None:
        return None

    def seqs(pos: str) -> dict[str, int]:
        out = {}
        for item in filter(None, pos.split(",")):
            parts = item.strip().split("-")
            if len(parts) != 3 or not all(p.isdigit() for p in parts):
                raise ValueError(item)
            out[parts[0]] = int(parts[2])
        return out

    try:
        primary, replica = seqs(primary_pos), seqs(replica_pos)
    except ValueError:
        return None
    return sum(max(0, seq - replica.get(domain, 0)) for domain, seq in primary.items())
