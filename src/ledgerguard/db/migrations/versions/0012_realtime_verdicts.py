"""realtime_verdicts: the streaming scorer's verdicts in a narrow table of their own

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29

The scorer wrote one `fraud_scores` row per transaction: ~20 columns and 4 secondary indexes
for every verdict, ~98 % of them unflagged and never read by the alert queue, logged twice
(primary, then the replica's `log_slave_updates`) and streamed back to the scorer. Its verdicts
now go to `realtime_verdicts` (primary key only, the verdict's own columns); only flagged ones,
and revisions of a real-time row already in `fraud_scores`, still go to `fraud_scores` (the
alert queue and `GET /alerts` read it). The `realtime_*` columns of `fraud_scores` move to the
new table (their values copied), which is where the nightly run's revisions leave the real-time
verdict visible. Dropping nullable columns at the end of a table is an instant change on
MariaDB 10.11 and MySQL 8.4.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

UTC_TIME = mysql.DATETIME(fsp=6)
_MOVED = (
    "realtime_first_scored_at",
    "realtime_scored_at",
    "realtime_rule_ids",
    "realtime_flagged",
    "realtime_score",
)


def upgrade() -> None:
    op.create_table(
        "realtime_verdicts",
        sa.Column("transaction_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("score", sa.Numeric(5, 4), nullable=False),
        sa.Column("flagged", sa.Boolean, nullable=False),
        sa.Column("rule_ids", sa.String(255), nullable=False),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("model_version", sa.String(32), nullable=True),
        sa.Column("scored_at", UTC_TIME, nullable=False),
        sa.Column("first_scored_at", UTC_TIME, nullable=False),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )
    # the reasons of a row the nightly run revised are the nightly run's: not the real-time
    # verdict's, which were not kept
    op.execute(
        "INSERT INTO realtime_verdicts (transaction_id, score, flagged, rule_ids, reasons, "
        "model_version, scored_at, first_scored_at) "
        "SELECT transaction_id, realtime_score, realtime_flagged, realtime_rule_ids, "
        "CASE WHEN source = 'realtime' THEN reasons ELSE '' END, "
        "CASE WHEN source = 'realtime' THEN model_version END, realtime_scored_at, "
        "COALESCE(realtime_first_scored_at, realtime_scored_at) "
        "FROM fraud_scores WHERE realtime_scored_at IS NOT NULL"
    )
    for column in _MOVED:
        op.drop_column("fraud_scores", column)


def downgrade() -> None:
    op.add_column("fraud_scores", sa.Column("realtime_score", sa.Numeric(5, 4), nullable=True))
    op.add_column("fraud_scores", sa.Column("realtime_flagged", sa.Boolean, nullable=True))
    op.add_column("fraud_scores", sa.Column("realtime_rule_ids", sa.String(255), nullable=True))
    op.add_column("fraud_scores", sa.Column("realtime_scored_at", UTC_TIME, nullable=True))
    op.add_column("fraud_scores", sa.Column("realtime_first_scored_at", UTC_TIME, nullable=True))
    # verdicts of transactions without a fraud_scores row (the unflagged ones) are lost
    op.execute(
        "UPDATE fraud_scores s JOIN realtime_verdicts v ON v.transaction_id = s.transaction_id "
        "SET s.realtime_score = v.score, s.realtime_flagged = v.flagged, "
        "s.realtime_rule_ids = v.rule_ids, s.realtime_scored_at = v.scored_at, "
        "s.realtime_first_scored_at = v.first_scored_at"
    )
    op.drop_table("realtime_verdicts")
