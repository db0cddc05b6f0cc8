"""The end-to-end demonstration run by `make demo` / `ledgerguard demo`.

Each step uses the same library code as the platform itself, and reports what it did, so the demo
doubles as a smoke test of a fresh installation: the cluster comes up, a transaction is written on
the primary (as the API account) and read back from the replica (as the read-only analytics account)
after waiting for its GTID.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from ledgerguard.cluster.local import LocalCluster
from ledgerguard.db.engines import primary_engine, replica_engine
from ledgerguard.db.transactions import NewTransaction, get_transaction, insert_transaction
from ledgerguard.settings import Settings

#: The original design's example transaction.
EXAMPLE = {"user_id": 999, "amount": Decimal("15000.00"), "currency": "USD"}


@dataclass
class RoundTrip:
    transaction_id: int
    read_back: dict[str, object]


async def write_and_read_back(settings: Settings, cluster: LocalCluster) -> RoundTrip:
    """Insert the example on the primary, wait for the replica, read it from the replica."""
    now = datetime.now(UTC)
    tx = NewTransaction(**EXAMPLE, amount_usd=EXAMPLE["amount"], occurred_at=now, created_at=now)
    writer, reader = primary_engine(settings, pool_size=1), replica_engine(settings, pool_size=1)
    try:
        async with writer.begin() as conn:
            tx_id = await insert_transaction(conn, tx=tx)
        cluster.wait_for_replica(timeout=settings.start_timeout)
        async with reader.connect() as conn:
            row = await get_transaction(conn, transaction_id=tx_id)
    finally:
        await writer.dispose()
        await reader.dispose()
    if row is None:
        raise RuntimeError(f"transaction {tx_id} is not on the replica after its GTID arrived")
    return RoundTrip(transaction_id=tx_id, read_back=dict(row._mapping))


def run_demo(settings: Settings, *, say: Callable[[str], None]) -> RoundTrip:
    """Cluster up, then the round trip; returns what the replica returned."""
    import asyncio

    cluster = LocalCluster(settings)
    cluster.up(progress=say)
    trip = asyncio.run(write_and_read_back(settings, cluster))
    say(
        f"wrote transaction {trip.transaction_id} on the primary; the replica returns "
        f"user_id={trip.read_back['user_id']} amount={trip.read_back['amount']} "
        f"{trip.read_back['currency']}"
    )
    return trip
