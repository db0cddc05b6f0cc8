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
)
UPSERT_SCORES = _upsert(fraud_scores, "analysed_at", _SCORE_COLUMNS)
UPSERT_LABELS = _upsert(fraud_labels, "labelled_at", ("external_id", "is_fraud", "source"))
