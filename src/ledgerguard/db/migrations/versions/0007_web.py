"""The analyst app: accounts, sessions, case reviews, four-eyes approvals, the audit trail

Revision ID: 0007
Revises: 0005
Create Date: 2026-11-29

`audit_log` is created in the database `<application database>_audit` (made by `cluster up`'s
provisioning, where the API account may only SELECT and INSERT). Two indexes on `fraud_scores`
let the alert queue read flagged verdicts a keyset page at a time, by score or by time.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UTC_TIME = mysql.DATETIME(fsp=6)


def _audit_schema() -> str:
    database = op.get_bind().execute(sa.text("SELECT DATABASE()")).scalar()
    return f"{database}_audit"


def upgrade() -> None:
    op.create_index(
        "ix_fraud_scores_flagged_score", "fraud_scores", ["flagged", "score", "transaction_id"]
    )
    op.create_index(
        "ix_fraud_scores_flagged_time", "fraud_scores", ["flagged", "occurred_at", "transaction_id"]
    )
    op.create_table(
        "web_users",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("disabled_at", UTC_TIME, nullable=True),
        sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
        sa.Column("locked_until", UTC_TIME, nullable=True),
        sa.UniqueConstraint("username", name="uq_web_users_username"),
        mysql_engine="InnoDB",
    )
    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.CHAR(64), primary_key=True),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("csrf_token", sa.CHAR(43), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("expires_at", UTC_TIME, nullable=False),
        sa.Column("ended_at", UTC_TIME, nullable=True),
        sa.Index("ix_web_sessions_user", "user_id"),
        mysql_engine="InnoDB",
    )
    op.create_table(
        "review_cases",
        sa.Column("transaction_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("claimed_by", sa.BigInteger, nullable=True),
        sa.Column("claimed_at", UTC_TIME, nullable=True),
        sa.Column("decision", sa.String(16), nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("decided_by", sa.BigInteger, nullable=True),
        sa.Column("decided_at", UTC_TIME, nullable=True),
        sa.Column("version", sa.Integer, nullable=False, server_default="0"),
        sa.Index("ix_review_cases_status", "status", "decided_at"),
        mysql_engine="InnoDB",
    )
    op.create_table(
        "approvals",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("transaction_id", sa.BigInteger, nullable=True),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("requested_by", sa.BigInteger, nullable=False),
        sa.Column("requested_at", UTC_TIME, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("decided_by", sa.BigInteger, nullable=True),
        sa.Column("decided_at", UTC_TIME, nullable=True),
        sa.Index("ix_approvals_status", "status", "requested_at"),
        mysql_engine="InnoDB",
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("at", UTC_TIME, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target", sa.String(128), nullable=False),
        sa.Column("before_value", sa.Text, nullable=True),
        sa.Column("after_value", sa.Text, nullable=True),
        sa.Index("ix_audit_log_at", "at"),
        sa.Index("ix_audit_log_actor", "actor", "at"),
        sa.Index("ix_audit_log_action", "action", "at"),
        schema=_audit_schema(),
        mysql_engine="InnoDB",
    )


def downgrade() -> None:
    op.drop_table("audit_log", schema=_audit_schema())
    op.drop_table("approvals")
    op.drop_table("review_cases")
    op.drop_table("web_sessions")
    op.drop_table("web_users")
    op.drop_index("ix_fraud_scores_flagged_time", table_name="fraud_scores")
    op.drop_index("ix_fraud_scores_flagged_score", table_name="fraud_scores")
