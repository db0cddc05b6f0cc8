"""The audit trail: append-only rows of who did what, when, before -> after.

The table lives in `<database>_audit`, where the API account holds only SELECT and INSERT (see
`ledgerguard.cluster.provision`), so no application bug can rewrite history. Statements here map
the placeholder schema of `tables.audit_log` to the real one from the connection's own database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ledgerguard.db.tables import AUDIT_SCHEMA, audit_log, audit_schema

PAGE_SIZE = 50


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    before_value: str | None
    after_value: str | None


def _on_audit(conn: sa.Connection) -> sa.Connection:
    database = conn.engine.url.database or ""
    return conn.execution_options(schema_translate_map={AUDIT_SCHEMA: audit_schema(database)})


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def record(
    conn: sa.Connection,
    *,
    actor: str,
    action: str,
    target: str,
    at: datetime,
    before: Any = None,
    after: Any = None,
) -> None:
    """Append one row in the caller's transaction (so it commits with the change it describes)."""
    _on_audit(conn).execute(
        sa.insert(audit_log).values(
            at=at,
            actor=actor[:64],
            action=action,
            target=target[:128],
            before_value=_text(before),
            after_value=_text(after),
        )
    )


def browse(
    conn: sa.Connection,
    *,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    before_id: int | None = None,
    limit: int = PAGE_SIZE,
) -> list[AuditEntry]:
    """Newest first, filtered, one keyset page (`before_id` = the last id of the previous page)."""
    query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if actor:
        query = query.where(audit_log.c.actor == actor)
    if action:
        query = query.where(audit_log.c.action == action)
    if target:
        query = query.where(audit_log.c.target == target)
    if before_id is not None:
        query = query.where(audit_log.c.id < before_id)
    return [
        AuditEntry(
            id=row.id,
            at=row.at,
            actor=row.actor,
            action=row.action,
            target=row.target,
            before_value=row.before_value,
            after_value=row.after_value,
        )
        for row in _on_audit(conn).execute(query)
    ]
