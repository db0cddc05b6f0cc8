"""api_keys.merchant_id: a key limited to one merchant's transactions

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29

NULL (every existing key) means the key is not limited. A key with a merchant may only write
transactions of that merchant and read transactions, labels and alerts of that merchant
(`ledgerguard.api.deps`); the API refuses anything else with 403.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("merchant_id", sa.BigInteger, nullable=True))


def downgrade() -> None:
    op.drop_column("api_keys", "merchant_id")
