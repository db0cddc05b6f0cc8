"""The upserts of the fraud engine's results (`fraud_scores`, `realtime_verdicts`,
`fraud_labels`), in one place.

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

from ledgerguard.db.tables import fraud_labels, fraud_scores, realtime_verdicts


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


def _upsert_realtime() -> Any:
    """The streaming scorer's upsert of the verdicts it also keeps in `fraud_scores` (flagged
    ones, revisions of its rows there): the verdict only while no nightly run has written the
    row (the nightly run is the reports' source).

    A replayed event (after a crash, the same verdict again) changes nothing, `analysed_at`
    included: it moves only with the content, as in `_upsert`.
    """
    statement = insert(fraud_scores)
    new = statement.inserted
    table = fraud_scores.c
    same_verdict = sa.and_(
        *(table[name].is_not_distinct_from(new[name]) for name in _SCORE_COLUMNS)
    )
    # a literal, not a bound parameter: pymysql's multi-row executemany refuses parameters in
    # the ON DUPLICATE KEY UPDATE part
    nightly = table.source == sa.literal_column("'nightly'")
    keep = sa.or_(nightly, same_verdict)
    assignments: list[tuple[str, Any]] = [
        ("analysed_at", sa.case((keep, table.analysed_at), else_=new.analysed_at)),
    ]
    # `source` is read by every CASE below, so it is not assigned here at all: a row stays
    # `nightly` once the nightly run has written it, and is `realtime` otherwise.
    assignments += [
        (name, sa.case((nightly, table[name]), else_=new[name])) for name in _SCORE_COLUMNS
    ]
    return statement.on_duplicate_key_update(assignments)


UPSERT_REALTIME_SCORES = _upsert_realtime()
#: Every verdict of the streaming scorer (`realtime_verdicts`): `scored_at` moves with the
#: verdict, `first_scored_at` is the insert's and never assigned again.
UPSERT_REALTIME_VERDICTS = _upsert(
    realtime_verdicts, "scored_at", ("score", "flagged", "rule_ids", "reasons", "model_version")
)


def select_realtime_scored(transaction_ids: list[int]) -> sa.Select[Any]:
    """Which of `transaction_ids` have a real-time verdict in `fraud_scores` (a flagged one the
    scorer may now revise)."""
    return sa.select(fraud_scores.c.transaction_id).where(
        fraud_scores.c.transaction_id.in_(transaction_ids),
        fraud_scores.c.source == "realtime",
    )


def select_realtime_flagged(transaction_ids: list[int]) -> sa.Select[Any]:
    """Id and score of the flagged real-time verdicts among `transaction_ids` (what a restarted
    scorer last wrote for them, `OnlineState.recall_flagged`)."""
    return sa.select(realtime_verdicts.c.transaction_id, realtime_verdicts.c.score).where(
        realtime_verdicts.c.transaction_id.in_(transaction_ids),
        realtime_verdicts.c.flagged.is_(True),
    )


UPSERT_LABELS = _upsert(fraud_labels, "labelled_at", ("external_id", "is_fraud", "source"))


async def get_label(conn: AsyncConnection, *, transaction_id: int) -> sa.Row[Any] | None:
    """A transaction's current label, or None."""
    query = sa.select(fraud_labels).where(fraud_labels.c.transaction_id == transaction_id)
    return (await conn.execute(query)).first()
