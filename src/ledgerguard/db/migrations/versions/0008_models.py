"""fraud_scores.model_version: which stored model scored each verdict

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29

The nightly analysis uses the promoted version of the model store (`LEDGERGUARD_FRAUD__MODEL_
STORE_DIR`) when there is one. Recording the version on every verdict lets an analyst or an
auditor tell which model (file + card) stood behind a score; NULL means the rules alone.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("fraud_scores", sa.Column("model_version", sa.String(32), nullable=True))


def downgrade() -> None:
    op.drop_column("fraud_scores", "model_version")
