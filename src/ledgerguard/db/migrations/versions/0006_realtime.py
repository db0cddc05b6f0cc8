"""Real-time scoring: how a verdict was scored, the scorer's checkpoint, the alert outbox

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29

* `fraud_scores.source` says which scorer wrote the verdict the row holds (`nightly` for every
  existing row, `realtime` for the streaming scorer's); `analysed_at` already says when. The
  streaming scorer's own verdict is also kept in the `realtime_*` columns, which the nightly run
  never touches, so when the nightly run revises a real-time verdict both stay visible.
* `ix_fraud_scores_flagged`: `GET /alerts` pages through flagged rows newest first.
* `scorer_checkpoints`: the GTID position each scorer partition has scored up to, written in the
  same transaction as its verdicts.
* `alert_deliveries`: the webhook outbox and dead letters, one row per delivery id.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UTC_TIME = mysql.DATETIME(fsp=6)


def upgrade() -> None:
    op.add_column(
        "fraud_scores",
        sa.Column("source", sa.String(8), nullable=False, server_default="nightly"),
    )
    op.add_column("fraud_scores", sa.Column("realtime_score", sa.Numeric(5, 4), nullable=True))
    op.add_column("fraud_scores", sa.Column("realtime_flagged", sa.Boolean, nullable=True))
    op.add_column("fraud_scores", sa.Column("realtime_rule_ids", sa.String(255), nullable=True))
    op.add_column("fraud_scores", sa.Column("realtime_scored_at", UTC_TIME, nullable=True))
    op.create_index("ix_fraud_scores_flagged", "fraud_scores", ["flagged", "transaction_id"])
    op.create_table(
        "scorer_checkpoints",
        sa.Column("partition_name", sa.String(16), primary_key=True),
        sa.Column("gtid_pos", sa.String(1024), nullable=False),
        sa.Column("event_at", UTC_TIME, nullable=True),
        sa.Column("transactions_scored", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )
    op.create_table(
        "alert_deliveries",
        sa.Column("delivery_id", sa.CHAR(36), primary_key=True),
        sa.Column("transaction_id", sa.BigInteger, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", UTC_TIME, nullable=False),
        sa.Column("last_error", sa.String(500), nullable=False, server_default=""),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("delivered_at", UTC_TIME, nullable=True),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )
    op.create_index("ix_alert_deliveries_due", "alert_deliveries", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_table("alert_deliveries")
    op.drop_table("scorer_checkpoints")
    op.drop_index("ix_fraud_scores_flagged", table_name="fraud_scores")
    for column in (
        "realtime_scored_at",
        "realtime_rule_ids",
        "realtime_flagged",
        "realtime_score",
        "source",
    ):
        op.drop_column("fraud_scores", column)
