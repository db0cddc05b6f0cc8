"""Migration 0012 on the real primary: the `realtime_*` columns of `fraud_scores` move, with
their values, into `realtime_verdicts`, and its downgrade puts them back.

An upgrade that dropped the columns without copying would lose every real-time verdict of an
installation; the schema test (`test_schema.py`) cannot see that, as it compares empty tables.
The migration runs on a database of its own (made like `cluster up` makes the application's),
so the session's database stays at the head revision for every other test.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
import sqlalchemy as sa

from ledgerguard.cluster.admin import admin_connection
from ledgerguard.cluster.local import LocalCluster
from ledgerguard.cluster.provision import provision_primary
from ledgerguard.db.engines import migration_engine
from ledgerguard.db.migrate import alembic_config, upgrade
from ledgerguard.db.tables import audit_schema
from ledgerguard.settings import Settings

_DATABASE = "lg_migration_0012"
_FIRST = datetime(2026, 11, 29, 10, 0, 0, 123456)
_REVISED = datetime(2026, 11, 29, 10, 0, 5)

# (id, source, reasons, realtime score, flagged, rule ids, first scored, scored)
_ROWS = [
    # the scorer's own verdict: everything moves, its reasons and model version too
    (1, "realtime", "velocity: 9 payments in 10 min", "0.9100", 1, "velocity", _FIRST, _REVISED),
    # revised by the nightly run: the real-time verdict moves, the reasons are the nightly's
    (2, "nightly", "large amount", "0.1000", 0, "", _FIRST, _FIRST),
    # a nightly verdict the scorer never gave: nothing moves
    (3, "nightly", "structuring", None, None, None, None, None),
]


@pytest.fixture
def database(cluster: LocalCluster, settings: Settings) -> Iterator[Settings]:
    """Settings naming a fresh database provisioned like the application's; dropped after."""
    other = settings.model_copy(update={"database": _DATABASE})
    password = settings.mysql_root_password.get_secret_value()
    with admin_connection(cluster.specs["primary"], password=password) as conn:
        provision_primary(conn, other)
    try:
        yield other
    finally:
        with (
            admin_connection(cluster.specs["primary"], password=password) as conn,
            conn.cursor() as cursor,
        ):
            for name in (_DATABASE, audit_schema(_DATABASE)):
                cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")


def _columns(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return {column["name"] for column in sa.inspect(conn).get_columns("fraud_scores")}


def test_the_realtime_columns_move_with_their_values_and_come_back(database: Settings):
    from alembic import command

    upgrade(database, "0011")
    engine = migration_engine(database)
    try:
        with engine.begin() as conn:
            for tx_id, source, reasons, score, flagged, rule_ids, first, scored in _ROWS:
                conn.execute(
                    sa.text(
                        "INSERT INTO fraud_scores (transaction_id, user_id, occurred_at, amount,"
                        " currency, amount_usd, score, flagged, rule_ids, reasons,"
                        " interval_start, interval_end, analysed_at, source, model_version,"
                        " realtime_score, realtime_flagged, realtime_rule_ids,"
                        " realtime_scored_at, realtime_first_scored_at) VALUES (:id, 7,"
                        " :at, 12.50, 'EUR', 13.00, 0.5000, 1, 'r', :reasons, :at, :at, :at,"
                        " :source, 'v1', :score, :flagged, :rule_ids, :scored, :first)"
                    ),
                    {
                        "id": tx_id,
                        "at": _FIRST,
                        "reasons": reasons,
                        "source": source,
                        "score": score,
                        "flagged": flagged,
                        "rule_ids": rule_ids,
                        "scored": scored,
                        "first": first,
                    },
                )

        upgrade(database, "0012")
        assert not {c for c in _columns(engine) if c.startswith("realtime_")}
        with engine.connect() as conn:
            moved = {
                row.transaction_id: row
                for row in conn.execute(
                    sa.text("SELECT * FROM realtime_verdicts ORDER BY transaction_id")
                )
            }
        assert sorted(moved) == [1, 2]
        own, revised = moved[1], moved[2]
        assert (str(own.score), own.flagged, own.rule_ids) == ("0.9100", 1, "velocity")
        assert own.reasons == "velocity: 9 payments in 10 min"
        assert own.model_version == "v1"
        assert (own.first_scored_at, own.scored_at) == (_FIRST, _REVISED)
        assert (str(revised.score), revised.flagged, revised.rule_ids) == ("0.1000", 0, "")
        assert revised.reasons == "" and revised.model_version is None
        assert revised.first_scored_at == _FIRST

        command.downgrade(alembic_config(database), "0011")
        assert {"realtime_score", "realtime_first_scored_at"} <= _columns(engine)
        with engine.connect() as conn:
            back = {
                row.transaction_id: row
                for row in conn.execute(
                    sa.text(
                        "SELECT transaction_id, realtime_score, realtime_flagged,"
                        " realtime_rule_ids, realtime_scored_at, realtime_first_scored_at"
                        " FROM fraud_scores ORDER BY transaction_id"
                    )
                )
            }
        assert tuple(back[1])[1:] == (own.score, 1, "velocity", _REVISED, _FIRST)
        assert tuple(back[2])[1:] == (revised.score, 0, "", _FIRST, _FIRST)
        assert tuple(back[3])[1:] == (None, None, None, None, None)
    finally:
        engine.dispose()
