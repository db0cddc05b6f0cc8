"""Table definitions (SQLAlchemy Core), the single description of the schema the code queries.

Migrations in `migrations/versions` create these tables; a test checks that the migrated schema
and this metadata agree, so neither drifts.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from ledgerguard.utc import as_utc, utc_naive

metadata = sa.MetaData()


class UTCDateTime(sa.TypeDecorator[datetime]):
    """DATETIME(6) holding UTC; Python sees timezone-aware datetimes only.

    Naive datetimes are refused on the way in: a naive value is a bug at an edge, and silently
    guessing its zone is how ledgers end up an hour off.
    """

    impl = mysql.DATETIME(fsp=6)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return utc_naive(value)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else as_utc(value, assume_utc=True)


#: Money: DECIMAL(19,4) holds every ISO 4217 minor unit (at most 4 digits) up to 10^15.
MONEY = sa.Numeric(19, 4)
#: Time: DATETIME(6), always UTC (the servers run with time_zone +00:00).
UTC_TIME = UTCDateTime()
#: Ids: BIGINT everywhere.
BIG_ID = sa.BigInteger()

transactions = sa.Table(
    "transactions",
    metadata,
    sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
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
    # Covers every column the fraud engine reads (migration 0004 says why); `id` is implicit.
    sa.Index(
        "ix_transactions_user_time",
        "user_id",
        "occurred_at",
        "terminal_id",
        "amount",
        "amount_usd",
        "currency",
    ),
    sa.Index("ix_transactions_time", "occurred_at"),
    sa.Index("ix_transactions_terminal_time", "terminal_id", "occurred_at"),
    mysql_engine="InnoDB",
)


#: API keys: only a SHA-256 of the key is stored; `prefix` (public, unique) finds the row and is
#: what `apikey list` shows. `scopes` is a space-separated set.
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("key_hash", sa.CHAR(64), nullable=False),
    sa.Column("scopes", sa.String(255), nullable=False),
    sa.Column("created_at", UTC_TIME, nullable=False),
    sa.Column("revoked_at", UTC_TIME, nullable=True),
    #: NULL: any merchant; else the only merchant this key may write and read (0010)
    sa.Column("merchant_id", sa.BigInteger, nullable=True),
    sa.UniqueConstraint("prefix", name="uq_api_keys_prefix"),
    sa.UniqueConstraint("name", name="uq_api_keys_name"),
    mysql_engine="InnoDB",
)

#: One row per (API key, Idempotency-Key): the request's body hash and the transaction it created.
idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("api_key_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("idempotency_key", sa.String(255), primary_key=True),
    sa.Column("request_hash", sa.CHAR(64), nullable=False),
    sa.Column("transaction_id", sa.BigInteger, nullable=False),
    sa.Column("created_at", UTC_TIME, nullable=False),
    mysql_engine="InnoDB",
)


# --- fraud analysis (ledgerguard.fraud) ---------------------------------------------------------

#: Confirmed outcomes (chargebacks, analyst decisions), one per transaction; a later label for the
#: same transaction replaces the earlier one. `labelled_at` is when the outcome became known.
fraud_labels = sa.Table(
    "fraud_labels",
    metadata,
    sa.Column("transaction_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("external_id", sa.String(64), nullable=True),
    sa.Column("is_fraud", sa.Boolean, nullable=False),
    sa.Column("labelled_at", UTC_TIME, nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Index("ix_fraud_labels_is_fraud", "is_fraud"),
    mysql_engine="InnoDB",
)

#: The fraud engine's verdict per transaction (upserted; a rerun of the same interval with the
#: same data changes nothing, `analysed_at` included). `user_id`, `occurred_at`, `amount`,
#: `currency` and `amount_usd` are copies so reports and bucketed merges read this table alone.
#: `source` is the scorer of the verdict held (`nightly`, `realtime`) and `analysed_at` when it
#: was scored. The streaming scorer writes here only its flagged verdicts (and revisions of a
#: real-time row already here): every verdict of its own goes to `realtime_verdicts`, which the
#: nightly run never writes, so a real-time verdict the nightly run revised is still visible.
fraud_scores = sa.Table(
    "fraud_scores",
    metadata,
    sa.Column("transaction_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("user_id", sa.BigInteger, nullable=False),
    sa.Column("occurred_at", UTC_TIME, nullable=False),
    sa.Column("amount", MONEY, nullable=False),
    sa.Column("currency", sa.CHAR(3), nullable=False),
    sa.Column("amount_usd", MONEY, nullable=True),
    sa.Column("score", sa.Numeric(5, 4), nullable=False),
    sa.Column("flagged", sa.Boolean, nullable=False),
    sa.Column("rule_ids", sa.String(255), nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),
    sa.Column("interval_start", UTC_TIME, nullable=False),
    sa.Column("interval_end", UTC_TIME, nullable=False),
    sa.Column("analysed_at", UTC_TIME, nullable=False),
    sa.Column("source", sa.String(8), nullable=False, server_default="nightly"),
    # The model store version that scored the row (NULL: the rules alone).
    sa.Column("model_version", sa.String(32), nullable=True),
    sa.Index("ix_fraud_scores_occurred_at", "occurred_at"),
    # GET /alerts: flagged rows, newest (largest id) first
    sa.Index("ix_fraud_scores_flagged", "flagged", "transaction_id"),
    mysql_engine="InnoDB",
)


# --- real-time scoring (ledgerguard.realtime) ---------------------------------------------------

#: The streaming scorer's own verdict per transaction (upserted, one row per transaction, the
#: same on a replayed batch). Narrow and with no secondary index: written for every transaction
#: (~98 % unflagged), applied and logged again by the replica, so each column and index here is
#: paid per payment (migration 0012, benchmarks/README.md). Nothing pages through it; the alert
#: queue reads the flagged verdicts the scorer also writes to `fraud_scores`.
realtime_verdicts = sa.Table(
    "realtime_verdicts",
    metadata,
    sa.Column("transaction_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("score", sa.Numeric(5, 4), nullable=False),
    sa.Column("flagged", sa.Boolean, nullable=False),
    sa.Column("rule_ids", sa.String(255), nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),
    # the model store version that scored it (NULL: the rules alone)
    sa.Column("model_version", sa.String(32), nullable=True),
    # moves when the verdict changes (a revision)
    sa.Column("scored_at", UTC_TIME, nullable=False),
    # the first verdict's time: set by the insert, never updated; commit -> first verdict is
    # what `bench realtime` measures
    sa.Column("first_scored_at", UTC_TIME, nullable=False),
    mysql_engine="InnoDB",
)

#: The GTID position each scorer partition ("K/N") has scored up to: written in the same
#: transaction as the verdicts it covers, so a restart resumes exactly there.
scorer_checkpoints = sa.Table(
    "scorer_checkpoints",
    metadata,
    sa.Column("partition_name", sa.String(16), primary_key=True),
    sa.Column("gtid_pos", sa.String(1024), nullable=False),
    sa.Column("event_at", UTC_TIME, nullable=True),
    sa.Column("transactions_scored", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("updated_at", UTC_TIME, nullable=False),
    mysql_engine="InnoDB",
)

#: Webhook outbox: one row per alert delivery (id = the `X-LedgerGuard-Delivery` header), written
#: with the verdict. `status` is `pending` (retried with backoff), `delivered`, or `dead` (the
#: dead letters `ledgerguard alerts redeliver` sends again).
alert_deliveries = sa.Table(
    "alert_deliveries",
    metadata,
    sa.Column("delivery_id", sa.CHAR(36), primary_key=True),
    sa.Column("transaction_id", sa.BigInteger, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTC_TIME, nullable=False),
    sa.Column("last_error", sa.String(500), nullable=False, server_default=""),
    sa.Column("created_at", UTC_TIME, nullable=False),
    sa.Column("delivered_at", UTC_TIME, nullable=True),
    sa.Index("ix_alert_deliveries_due", "status", "next_attempt_at"),
    mysql_engine="InnoDB",
)

# Alert queue: `flagged` verdicts in score order or time order, one keyset page at a time
# (migration 0007); `transaction_id` ends each index so the keyset's tie-break is in it.
sa.Index(
    "ix_fraud_scores_flagged_score",
    fraud_scores.c.flagged,
    fraud_scores.c.score,
    fraud_scores.c.transaction_id,
)
sa.Index(
    "ix_fraud_scores_flagged_time",
    fraud_scores.c.flagged,
    fraud_scores.c.occurred_at,
    fraud_scores.c.transaction_id,
)


# --- the analyst app (ledgerguard.web) -----------------------------------------------------------

#: People (API keys stay for machines). `password_hash` is an Argon2id PHC string;
#: `failed_logins` / `locked_until` implement the login lockout.
web_users = sa.Table(
    "web_users",
    metadata,
    sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
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

#: Server-side sessions: the cookie holds a random token, the table only its SHA-256, so a
#: leaked table does not log anyone in; logout and expiry end a session for good.
web_sessions = sa.Table(
    "web_sessions",
    metadata,
    sa.Column("token_hash", sa.CHAR(64), primary_key=True),
    sa.Column("user_id", sa.BigInteger, nullable=False),
    sa.Column("csrf_token", sa.CHAR(43), nullable=False),
    sa.Column("created_at", UTC_TIME, nullable=False),
    sa.Column("expires_at", UTC_TIME, nullable=False),
    sa.Column("ended_at", UTC_TIME, nullable=True),
    sa.Index("ix_web_sessions_user", "user_id"),
    mysql_engine="InnoDB",
)

#: An alert's review: absent = open. `version` grows with every change, so a form carrying an
#: older version is refused (stale form) instead of overwriting a decision.
review_cases = sa.Table(
    "review_cases",
    metadata,
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

#: Four eyes: a change that needs a second person waits here until someone else approves it.
approvals = sa.Table(
    "approvals",
    metadata,
    sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
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

#: Rule parameters changed in the web app (`ledgerguard.fraud.parameter_sets`): id = version,
#: `parameters` = JSON of the values differing from the settings. `pending` until a second
#: administrator approves (or rejects) it; the approved row with the highest id is active.
fraud_parameter_sets = sa.Table(
    "fraud_parameter_sets",
    metadata,
    sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
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

#: Placeholder schema of the audit trail: the real name is `<database>_audit` (see
#: `audit_schema`), mapped at execution with `schema_translate_map`. The trail lives in its own
#: database because MariaDB/MySQL privileges only add up: the API account's UPDATE on the
#: application database would cover any table in it, so an INSERT/SELECT-only grant needs a
#: database of its own.
AUDIT_SCHEMA = "audit"

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
    sa.Column("at", UTC_TIME, nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("target", sa.String(128), nullable=False),
    sa.Column("before_value", sa.Text, nullable=True),
    sa.Column("after_value", sa.Text, nullable=True),
    sa.Index("ix_audit_log_at", "at"),
    sa.Index("ix_audit_log_actor", "actor", "at"),
    sa.Index("ix_audit_log_action", "action", "at"),
    schema=AUDIT_SCHEMA,
    mysql_engine="InnoDB",
)


def audit_schema(database: str) -> str:
    """The audit trail's database next to the application database `database`."""
    return f"{database}_audit"
