"""The scorer's start-up: its state rebuilt from one consistent snapshot of the replica.

Read exactly as the nightly analysis reads (`fraud.reader.ReplicaReader`, `app_user`): the
partition's transactions of the last `lookback_days` page by page, and the per-(terminal, day)
counts of every user (with the terminal profile on, also the profile of the days before today,
by the nightly run's function: `fraud.terminal_profile`). The snapshot's own GTID position comes with it, so the scorer knows which
streamed transactions the state already holds (`GtidPosition.covers`).

Also the one look-up the stream needs on the replica: the terminal and time of a labelled
transaction (a `fraud_labels` row carries only the transaction id).
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pandas as pd
import pymysql

from ledgerguard.db.dialect import Flavour
from ledgerguard.fraud.engine.windows import SECONDS_PER_DAY, TX_DTYPES
from ledgerguard.fraud.reader import ReplicaReader
from ledgerguard.fraud.terminal_profile import replica_profile_days
from ledgerguard.money import FxRates
from ledgerguard.realtime.partition import Partition
from ledgerguard.realtime.position import GtidPosition
from ledgerguard.realtime.state import OnlineState
from ledgerguard.realtime.terminal_counts import ProfileLoader, TerminalCounts
from ledgerguard.settings import Settings

if TYPE_CHECKING:
    from ledgerguard.fraud.engine.model import FraudModel

#: Terminal and occurred_at (microseconds since the epoch) of labelled transactions.
_LABELLED_SQL = (
    "SELECT id, terminal_id, user_id, "
    "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', occurred_at) "
    "FROM transactions WHERE terminal_id IS NOT NULL AND id IN ({marks})"
)


def rebuild_state(
    settings: Settings,
    *,
    flavour: Flavour,
    partition: Partition,
    fx: FxRates,
    model: FraudModel | None,
    now: datetime | None = None,
) -> tuple[OnlineState, GtidPosition]:
    """The partition's state as of one replica snapshot, and that snapshot's GTID position."""
    params = settings.fraud.at_payment_time()  # a payment is scored before its day ends
    now = now or datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    with ReplicaReader(settings) as replica:
        position = GtidPosition.parse(flavour, replica.snapshot_position(flavour))
        days, frauds = replica.terminal_tables(
            since=midnight - timedelta(days=params.terminal_read_days),
            until=midnight + timedelta(days=2),
        )
        terminals = TerminalCounts(days, params, frauds=frauds)
        if params.terminal_profile_features:
            today = int(midnight.timestamp()) // SECONDS_PER_DAY
            terminals = TerminalCounts(
                days,
                params,
                frauds=frauds,
                profile=replica_profile_days(
                    replica,
                    params,
                    since=midnight - timedelta(days=params.terminal_profile_days),
                    until=midnight,
                    fx=fx,
                ),
                profile_through=today - 1,
                profile_of=profile_loader(settings, fx),
            )
        state = OnlineState(params, partition=partition, terminals=terminals, fx=fx, model=model)
        for frame in replica.pages(
            since=now - timedelta(days=params.lookback_days),
            until=now + timedelta(days=2),
            page_rows=params.page_rows,
            bucket=partition.index,
            buckets=partition.count,
            read_ahead=False,
        ):
            state.load(frame)
    return state, position


def profile_loader(settings: Settings, fx: FxRates) -> ProfileLoader:
    """The terminal profile of finished days, read from the replica when the day rolls over
    (`TerminalCounts`): the nightly run's own pass over every user's pages."""

    def profile_of(first_day: int, stop_day: int) -> pd.DataFrame:
        def moment(day: int) -> datetime:
            return datetime.fromtimestamp(day * SECONDS_PER_DAY, UTC)

        with ReplicaReader(settings) as replica:
            return replica_profile_days(
                replica, settings.fraud, since=moment(first_day), until=moment(stop_day), fx=fx
            )

    return profile_of


#: Transactions committed since a moment, of one partition, as a transaction frame's text lines.
_SINCE_SQL = (
    "SELECT CONCAT_WS(',', id, user_id, COALESCE(terminal_id, -1), "
    "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', occurred_at), "
    "CAST(amount * 10000 AS SIGNED), COALESCE(CAST(amount_usd * 10000 AS SIGNED), -1), currency) "
    "FROM transactions WHERE created_at >= %s AND user_id MOD %s = %s"
)


def committed_since(
    conn: pymysql.connections.Connection, since: datetime, partition: Partition
) -> pd.DataFrame:
    """The partition's transactions created at or after `since` (`scorer --rebuild`)."""
    with conn.cursor() as cursor:
        cursor.execute(
            _SINCE_SQL,
            (since.astimezone(UTC).replace(tzinfo=None), partition.count, partition.index),
        )
        lines = "\n".join(row[0] for row in cursor.fetchall())
    if not lines:
        return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in TX_DTYPES.items()})
    return pd.read_csv(
        io.StringIO(lines), header=None, names=list(TX_DTYPES), dtype=TX_DTYPES, na_filter=False
    )


def labelled_transactions(
    conn: pymysql.connections.Connection, transaction_ids: list[int]
) -> dict[int, tuple[int, int, int]]:
    """transaction id -> (terminal id, user id, occurred_at in µs) for labelled ids with a
    terminal."""
    if not transaction_ids:
        return {}
    marks = ", ".join(["%s"] * len(transaction_ids))
    with conn.cursor() as cursor:
        cursor.execute(_LABELLED_SQL.format(marks=marks), transaction_ids)
        return {int(i): (int(t), int(u), int(us)) for i, t, u, us in cursor.fetchall()}
