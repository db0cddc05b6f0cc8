"""SQL of rule-parameter sets: propose, approve or reject (four eyes), read the active one.

A set is a row of `fraud_parameter_sets`; its id is its version and `parameters` the JSON of the
values that differ from the settings. What the values mean and how they are validated is
`ledgerguard.fraud.parameter_sets`' business; here they are an opaque JSON object.

Deciding locks every pending row and then reads the active set with a locking read, so two
administrators approving two proposals at the same moment are serialised: the second one sees
the first one's set active and is refused as stale instead of silently replacing it.
Functions take a sync `Connection` (the web app calls them through `run_sync`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ledgerguard.db.tables import fraud_parameter_sets
from ledgerguard.errors import LedgerGuardError

#: Sets shown on the parameter page (newest first).
HISTORY_SIZE = 20


class ParameterSetError(LedgerGuardError):
    """A proposal or a decision refused as it stands (decided meanwhile, one's own, stale)."""


@dataclass(frozen=True)
class ParameterSet:
    id: int
    parameters: dict[str, Any]
    note: str
    status: str
    based_on: int | None
    proposed_by: int
    proposed_at: datetime
    decided_by: int | None
    decided_at: datetime | None


def _set(row: Any) -> ParameterSet:
    values = row._asdict()
    values["parameters"] = json.loads(values["parameters"])
    return ParameterSet(**values)


def _active_query() -> sa.Select[Any]:
    return (
        sa.select(fraud_parameter_sets)
        .where(fraud_parameter_sets.c.status == "approved")
        .order_by(fraud_parameter_sets.c.id.desc())
        .limit(1)
    )


def active_set(conn: sa.Connection) -> ParameterSet | None:
    """The approved set with the highest version; None while none was ever approved."""
    row = conn.execute(_active_query()).first()
    return None if row is None else _set(row)


def get_set(conn: sa.Connection, *, set_id: int) -> ParameterSet | None:
    row = conn.execute(
        sa.select(fraud_parameter_sets).where(fraud_parameter_sets.c.id == set_id)
    ).first()
    return None if row is None else _set(row)


def recent_sets(conn: sa.Connection, *, limit: int = HISTORY_SIZE) -> list[ParameterSet]:
    query = sa.select(fraud_parameter_sets).order_by(fraud_parameter_sets.c.id.desc())
    return [_set(row) for row in conn.execute(query.limit(limit))]


def propose_set(
    conn: sa.Connection, *, parameters: dict[str, Any], note: str, user_id: int, now: datetime
) -> ParameterSet:
    """A pending set based on the active one; `parameters` must already be validated."""
    active = active_set(conn)
    result = conn.execute(
        sa.insert(fraud_parameter_sets).values(
            parameters=json.dumps(parameters, sort_keys=True),
            note=note[:500],
            status="pending",
            based_on=None if active is None else active.id,
            proposed_by=user_id,
            proposed_at=now,
        )
    )
    created = get_set(conn, set_id=int(result.inserted_primary_key[0]))
    assert created is not None
    return created


def decide_set(
    conn: sa.Connection, *, set_id: int, user_id: int, approve: bool, now: datetime
) -> tuple[ParameterSet, ParameterSet | None]:
    """Approve or reject someone else's pending set; returns (the set, the set active before).

    Refused (`ParameterSetError`, nothing written): an unknown set, one decided meanwhile, one's
    own proposal, and approving a set proposed while another one was active (stale: it would
    undo that one's changes without anyone having seen them).
    """
    conn.execute(
        sa.select(fraud_parameter_sets.c.id)
        .where(fraud_parameter_sets.c.status == "pending")
        .with_for_update()
    ).all()
    row = conn.execute(
        sa.select(fraud_parameter_sets).where(fraud_parameter_sets.c.id == set_id).with_for_update()
    ).first()
    if row is None:
        raise ParameterSetError(f"there is no parameter set {set_id}")
    proposal = _set(row)
    if proposal.status != "pending":
        raise ParameterSetError(
            f"parameter set {set_id} was already {proposal.status} meanwhile: nothing changed"
        )
    if proposal.proposed_by == user_id:
        raise ParameterSetError(
            "four eyes: a second administrator must decide this proposal, not the one who made it"
        )
    active_row = conn.execute(_active_query().with_for_update()).first()
    active = None if active_row is None else _set(active_row)
    active_id = None if active is None else active.id
    if approve and active_id != proposal.based_on:
        raise ParameterSetError(
            f"parameter set {set_id} was proposed on version {proposal.based_on or 'settings'}, "
            f"but version {active_id or 'settings'} is active now: reject it and propose again"
        )
    conn.execute(
        sa.update(fraud_parameter_sets)
        .where(fraud_parameter_sets.c.id == set_id)
        .values(status="approved" if approve else "rejected", decided_by=user_id, decided_at=now)
    )
    decided = get_set(conn, set_id=set_id)
    assert decided is not None
    return decided, active
