"""Alembic environment: online migrations only, URL handed in by `ledgerguard.db.migrate`."""

from alembic import context

from ledgerguard.db.engines import sync_engine
from ledgerguard.db.tables import metadata

config = context.config
engine = sync_engine(config.attributes["url"])
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
