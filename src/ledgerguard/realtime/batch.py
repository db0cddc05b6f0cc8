"""What one batch of binlog transactions brings the streaming scorer.

The scorer reads whole committed transactions (`binlog.BinlogTransaction`) and needs three
things of a batch: the payments the state has not seen (`fresh`: counted and scored), the
payments already in the snapshot the state was rebuilt from (`replayed`: a restart after a
crash streams them again; scored again, not counted twice) and how the count of confirmed
frauds moves per transaction (`labels`, from `fraud_labels` rows inserted, updated or
deleted; those in the snapshot are already counted; a change that nets to 0 is left out).
Apart from `scorer` because it is a pure function of the events, tested without a binlog or
a server.
"""

from __future__ import annotations

from typing import Any

from ledgerguard.realtime.binlog import BinlogTransaction
from ledgerguard.realtime.position import GtidPosition

#: A payment as the binlog gives it: column name -> value.
Row = dict[str, Any]


def changes_of(
    batch: list[BinlogTransaction], snapshot: GtidPosition
) -> tuple[list[Row], list[Row], dict[int, int]]:
    """(fresh payments, replayed payments, transaction id -> change of its fraud count)."""
    fresh: list[Row] = []  # transactions the state has not seen
    replayed: list[Row] = []  # already in the snapshot: score, do not add
    labels: dict[int, int] = {}  # transaction id -> fraud count change
    for transaction in batch:
        seen = snapshot.covers(transaction.gtid)
        for change in transaction.changes:
            if change.table == "transactions" and change.kind == "insert":
                (replayed if seen else fresh).append(change.after or {})
            elif change.table == "fraud_labels" and not seen:
                delta = fraud_change(change.before, change.after)
                if delta:
                    tx_id = int((change.after or change.before or {})["transaction_id"])
                    labels[tx_id] = labels.get(tx_id, 0) + delta
    # a label set and unset within the batch nets to 0: no change to hand the terminal
    # counts, which would otherwise rebuild their history for nothing
    return fresh, replayed, {tx_id: n for tx_id, n in labels.items() if n}


def fraud_change(before: Row | None, after: Row | None) -> int:
    """+1 / -1 / 0: how a label row change moves the count of confirmed frauds."""
    was = bool(before and before.get("is_fraud"))
    now = bool(after and after.get("is_fraud"))
    return int(now) - int(was)
