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
from ledgerguard.db.tables import metadata
from ledgerguard.settings import Settings


def test_migrations_build_the_schema_the_code_describes(cluster: LocalCluster, settings: Settings):
    engine = migration_engine(settings)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": False}
            )
            differences = compare_metadata(context, metadata)
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
