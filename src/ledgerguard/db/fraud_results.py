"""The upserts of the fraud engine's results (`fraud_scores`, `fraud_labels`), in one place.

Every write is `INSERT ... ON DUPLICATE KEY UPDATE`, so the same analysis or label import run
twice leaves the tables as they were, timestamps included: `analysed_at` / `labelled_at` move
only when the row's content changes. MariaDB applies the assignments of ON DUPLICATE KEY UPDATE
left to right, each seeing the columns as already updated, which is why the timestamp is
assigned first, while the old values are still there to compare. Used by the batch pipeline
(`ledgerguard.fraud.store`) and by the API's label endpoint, without importing pandas.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.mysql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ledgerguard.db.tables import fraud_labels, fraud_scores


def _upsert(table: sa.Table, stamp: str, compared: Sequence[str]) -> Any:
    """INSERT ... ON DUPLICATE KEY UPDATE that moves `stamp` only when `compared` columns change."""
    statement = insert(table)
    new = statement.inserted
    unchanged = sa.and_(*(table.c[name].is_not_distinct_from(new[name]) for name in compared))
    assignments = [(stamp, sa.case((unchanged, table.c[stamp]), else_=new[stamp]))]
    assignments += [(name, new[name]) for name in compared]
    return statement.on_duplicate_key_update(assignments)


_SCORE_COLUMNS = (
    "user_id",
    "occurred_at",
    "amount",
    "currency",
    "amount_usd",
    "score",
    "flagged",
    "rule_ids",
    "reasons",
    "interval_start",
    "interval_end",
    "model_version",
)
#: The nightly run's upsert: it always wins (`source` becomes `nightly`), and leaves the
#: `realtime_*` columns as they were.
UPSERT_SCORES = _upsert(fraud_scores, "analysed_at", (*_SCORE_COLUMNS, "source"))

_REALTIME_COLUMNS = ("realtime_score", "realtime_flagged", "realtime_rule_ids")


def _upsert_realtime() -> Any:
    """The streaming scorer's upsert: its own `realtime_*` columns always, the verdict itself
    only while no nightly run has written the row (the nightly run is the reports' source).

    A replayed event (after a crash, the same verdict again) changes nothing, timestamps
    included: `realtime_scored_at` / `analysed_at` move only with the content, as in `_upsert`.
    """
    statement = insert(fraud_scores)
    new = statement.inserted
    table = fraud_scores.c
    same_realtime = sa.and_(
        *(table[name].is_not_distinct_from(new[name]) for name in _REALTIME_COLUMNS)
    )
    same_verdict = sa.and_(
        *(table[name].is_not_distinct_from(new[name]) for name in _SCORE_COLUMNS)
    )
    # a literal, not a bound parameter: pymysql's multi-row executemany refuses parameters in
    # the ON DUPLICATE KEY UPDATE part
    nightly = table.source == sa.literal_column("'nightly'")
    keep = sa.or_(nightly, same_verdict)
    assignments: list[tuple[str, Any]] = [
        (
            "realtime_scored_at",
            sa.case((same_realtime, table.realtime_scored_at), else_=new.realtime_scored_at),
        ),
        ("analysed_at", sa.case((keep, table.analysed_at), else_=new.analysed_at)),
        # the first real-time verdict's time stays (a nightly-only row gets it now)
        (
            "realtime_first_scored_at",
            sa.func.coalesce(table.realtime_first_scored_at, new.realtime_first_scored_at),
        ),
    ]
    assignments += [(name, new[name]) for name in _REALTIME_COLUMNS]
    # `source` is read by every CASE below, so it is not assigned here at all: a row stays
    # `nightly` once the nightly run has written it, and is `realtime` otherwise.
    assignments += [
        (name, sa.case((nightly, table[name]), else_=new[name])) for name in _SCORE_COLUMNS
    ]
    return statement.on_duplicate_key_update(assignments)


UPSERT_REALTIME_SCORES = _upsert_realtime()
UPSERT_LABELS = _upsert(fraud_labels, "labelled_at", ("external_id", "is_fraud", "source"))


async def get_label(conn: AsyncConnection, *, transaction_id: int) -> sa.Row[Any] | None:
    """A transaction's current label, or None."""
    query = sa.select(fraud_labels).where(fraud_labels.c.transaction_id == transaction_id)
    return (await conn.execute(query)).first()
