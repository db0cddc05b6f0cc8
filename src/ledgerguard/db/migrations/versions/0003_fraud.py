"""fraud_labels and fraud_scores

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

MONEY = sa.Numeric(19, 4)
UTC_TIME = mysql.DATETIME(fsp=6)


def upgrade() -> None:
    op.create_table(
        "fraud_labels",
        sa.Column("transaction_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("external_id", sa.String(64), nullable=True),
        sa.Column("is_fraud", sa.Boolean, nullable=False),
        sa.Column("labelled_at", UTC_TIME, nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )
    op.create_index("ix_fraud_labels_is_fraud", "fraud_labels", ["is_fraud"])
    op.create_table(
        "fraud_scores",
        sa.Column("transaction_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("occurred_at", UTC_TIME, nullable=False),
        sa.Column("amount_usd", MONEY, nullable=True),
        sa.Column("score", sa.Numeric(5, 4), nullable=False),
        sa.Column("flagged", sa.Boolean, nullable=False),
        sa.Column("rule_ids", sa.String(255), nullable=False),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("interval_start", UTC_TIME, nullable=False),
        sa.Column("interval_end", UTC_TIME, nullable=False),
        sa.Column("analysed_at", UTC_TIME, nullable=False),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )
    op.create_index("ix_fraud_scores_occurred_at", "fraud_scores", ["occurred_at"])


def downgrade() -> None:
    op.drop_table("fraud_scores")
    op.drop_table("fraud_labels")
