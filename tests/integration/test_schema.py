"""The migrated schema on the real primary is exactly what `db/tables.py` describes.

`tables.py` is what the code queries; the migrations are what builds the servers. Alembic's
autogenerate comparison lists every table, column, column type, index and nullability
difference between the two, so a migration that forgets a column (or a model change without a migration) fails.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ledgerguard.cluster.local import LocalCluster
from ledgerguard.db.engines import migration_engine
from ledgerguard.db.tables import AUDIT_SCHEMA, audit_schema, metadata
from ledgerguard.settings import Settings


def _with_audit_schema(audit_db: str) -> sa.MetaData:
    """`metadata` with the audit trail's placeholder schema replaced by the real database."""
    real = sa.MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(
            real,
            schema=audit_db
            if table.schema == AUDIT_SCHEMA
            else sa.schema.SchemaConst.RETAIN_SCHEMA,
        )
    return real


def test_migrations_build_the_schema_the_code_describes(cluster: LocalCluster, settings: Settings):
    engine = migration_engine(settings)
    try:
        with engine.connect() as conn:
            audit_db = audit_schema(settings.database)
            context = MigrationContext.configure(
                conn,
                opts={
                    "compare_type": True,
                    "compare_server_default": False,
                    # the application database and the audit trail's own (`tables.audit_log`)
                    "include_schemas": True,
                    "include_name": lambda name, kind, _parent: (
                        kind != "schema" or name in (None, audit_db)
                    ),
                },
            )
            differences = compare_metadata(context, _with_audit_schema(audit_db))
            indexes = {
                index["name"]: index["column_names"]
                for index in sa.inspect(conn).get_indexes("transactions")
            }
    finally:
        engine.dispose()
    ignored = {"alembic_version"}
    real = [d for d in differences if not (d[0] == "remove_table" and d[1].name in ignored)]
    assert real == []
    assert indexes["ix_transactions_user_time"] == [
        "user_id",
        "occurred_at",
        "terminal_id",
        "amount",
        "amount_usd",
        "currency",
    ]
