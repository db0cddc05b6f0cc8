"""Run the Alembic migrations on the primary (they reach the replica by replication)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from ledgerguard.db.engines import migration_engine, migration_url
from ledgerguard.settings import Settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(settings: Settings) -> Config:
    """An Alembic config pointing at our migrations and the primary's DDL account."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["url"] = migration_url(settings)
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    command.upgrade(alembic_config(settings), revision)


def current(settings: Settings) -> str | None:
    """The revision the primary's schema is at (None before the first migration)."""
    from alembic.runtime.migration import MigrationContext

    engine = migration_engine(settings)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
