"""fraud_scores.realtime_first_scored_at: when the streaming scorer first gave a verdict

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29

`realtime_scored_at` moves whenever the scorer revises a verdict (a velocity burst or a
structuring group that grows makes its earlier members' verdicts change), so it cannot say how
long a payment waited for its first verdict. The new column is set once, by the insert, and never
updated: commit -> first verdict is `realtime_first_scored_at - transactions.created_at`. Adding a
nullable column at the end is an instant change on MariaDB 10.11 and MySQL 8.4, even on a large
table; existing rows keep NULL (their first verdict time is not known).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

UTC_TIME = mysql.DATETIME(fsp=6)


def upgrade() -> None:
    op.add_column("fraud_scores", sa.Column("realtime_first_scored_at", UTC_TIME, nullable=True))


def downgrade() -> None:
    op.drop_column("fraud_scores", "realtime_first_scored_at")
