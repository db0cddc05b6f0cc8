"""Alembic environment: online migrations only, URL handed in by `ledgerguard.db.migrate`."""

import sqlalchemy as sa
from alembic import context

from ledgerguard.db.tables import metadata

config = context.config
engine = sa.create_engine(config.attributes["url"], poolclass=sa.pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
