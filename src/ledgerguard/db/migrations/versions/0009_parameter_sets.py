"""fraud_parameter_sets: rule parameters changed in the web app, with four eyes

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29

One row per proposed parameter set; its id is the set's version. `parameters` holds JSON of the
values that differ from the settings (`LEDGERGUARD_FRAUD__*`), applied on top of them. A row is
`pending` until a second administrator approves or rejects it; the approved row with the highest
id is the set the nightly analysis and the streaming scorer use. `based_on` is the version that
was active when the set was proposed: an approval is refused once another set became active.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

UTC_TIME = mysql.DATETIME(fsp=6)


def upgrade() -> None:
    op.create_table(
        "fraud_parameter_sets",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("parameters", sa.Text, nullable=False),
        sa.Column("note", sa.String(500), nullable=False, server_default=""),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("based_on", sa.BigInteger, nullable=True),
        sa.Column("proposed_by", sa.BigInteger, nullable=False),
        sa.Column("proposed_at", UTC_TIME, nullable=False),
        sa.Column("decided_by", sa.BigInteger, nullable=True),
        sa.Column("decided_at", UTC_TIME, nullable=True),
        sa.Index("ix_fraud_parameter_sets_status", "status", "id"),
        mysql_engine="InnoDB",
    )


def downgrade() -> None:
    op.drop_table("fraud_parameter_sets")
