"""transactions table

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

MONEY = sa.Numeric(19, 4)
UTC_TIME = mysql.DATETIME(fsp=6)


def upgrade() -> None:
    op.create_table(
        "transactions",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("external_id", sa.String(64), nullable=True),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("currency", sa.CHAR(3), nullable=False),
        sa.Column("amount_usd", MONEY, nullable=True),
        sa.Column("terminal_id", sa.BigInteger, nullable=True),
        sa.Column("merchant_id", sa.BigInteger, nullable=True),
        sa.Column("occurred_at", UTC_TIME, nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="ACCEPTED"),
        sa.UniqueConstraint("external_id", name="uq_transactions_external_id"),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )
    op.create_index("ix_transactions_user_time", "transactions", ["user_id", "occurred_at"])
    op.create_index("ix_transactions_time", "transactions", ["occurred_at"])
    op.create_index("ix_transactions_terminal_time", "transactions", ["terminal_id", "occurred_at"])


def downgrade() -> None:
    op.drop_table("transactions")
