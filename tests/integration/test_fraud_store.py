"""`upsert_scores` and `upsert_labels` store exactly what SQLAlchemy stores for the same rows
sent as dicts.

Both render their values as SQL literals column by column (`verdict_columns`, session 18;
tuples through the driver's `executemany` before); the reference is the statement executed by
SQLAlchemy with dicts, every bind processor applied. `analysed_at` / `labelled_at` move only
when a row's content changes, so a second write through the other path with a later time that
leaves it unchanged proves that not one value differs. Ids far above every other test's (9.1e9).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from ledgerguard.cluster.local import LocalCluster
from ledgerguard.db.engines import writer_engine
from ledgerguard.db.fraud_results import UPSERT_LABELS, UPSERT_SCORES
from ledgerguard.fraud.store import LabelColumns, upsert_labels, upsert_scores, verdict_rows
from ledgerguard.settings import Settings
from ledgerguard.utc import to_us
from tests.support import connect

FIRST_ID = 9_100_000_000
START = datetime(2025, 3, 1, tzinfo=UTC)
END = START + timedelta(days=1)
EARLIER = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
LATER = EARLIER + timedelta(hours=1)


def _verdicts() -> pd.DataFrame:
    """Verdicts with every kind of value: a whole second and microseconds, no USD amount, the
    smallest amount, a model version and none, quotes, a backslash and non-ASCII in reasons."""
    return pd.DataFrame(
        {
            "transaction_id": [FIRST_ID, FIRST_ID + 1, FIRST_ID + 2],
            "user_id": [FIRST_ID, FIRST_ID, FIRST_ID + 1],
            "ts_us": [
                to_us(START + timedelta(hours=1)),
                to_us(START + timedelta(hours=2, microseconds=123_456)),
                to_us(START + timedelta(hours=23, minutes=59, seconds=59, microseconds=999_999)),
            ],
            "amount_units": [150_000_000, 1, 75_000_000_000],
            "currency": ["USD", "EUR", "XOF"],
            "usd_units": [150_000_000, 1, -1],
            "score": [1.0, 0.1234, 0.0],
            "flagged": [True, False, False],
            "rule_ids": ["large_amount,model", "", ""],
            "reasons": [
                "large_amount: 15000.0000 USD-equivalent is above 10000.00 USD; model: it's 0.93",
                'a "quoted" \\ backslash and ünïcödé, 10 €',
                "no ECB USD rate for XOF on 2025-03-01: USD-based rules not applied",
            ],
            "model_version": ["0001", "0001", None],
        }
    )


@pytest.fixture
def stored_ids(cluster: LocalCluster, settings: Settings) -> Iterator[None]:
    yield
    root = connect(
        settings, "primary", user="root", password=settings.mysql_root_password.get_secret_value()
    )
    with root, root.cursor() as cursor:
        cursor.execute("DELETE FROM fraud_scores WHERE transaction_id >= %s", (FIRST_ID,))
        cursor.execute("DELETE FROM fraud_labels WHERE transaction_id >= %s", (FIRST_ID,))


def _rows(settings: Settings, table: str = "fraud_scores") -> list[tuple]:
    engine = writer_engine(settings)
    try:
        with engine.connect() as conn:
            result = conn.exec_driver_sql(
                f"SELECT * FROM {table} WHERE transaction_id >= %s ORDER BY transaction_id",
                (FIRST_ID,),
            )
            return [tuple(row) for row in result]
    finally:
        engine.dispose()


def test_the_nightly_upsert_stores_what_sqlalchemy_stores(stored_ids: None, settings: Settings):
    verdicts = _verdicts()
    engine = writer_engine(settings)
    try:
        with engine.begin() as conn:
            assert upsert_scores(conn, verdicts, start=START, end=END, analysed_at=EARLIER) == 3
        first = _rows(settings)
        assert len(first) == 3
        with engine.begin() as conn:  # the same verdicts as dicts through SQLAlchemy, later
            rows = verdict_rows(
                verdicts,
                interval_start=START,
                interval_end=END,
                analysed_at=LATER,
                source="nightly",
            )
            conn.execute(UPSERT_SCORES, rows)
        assert _rows(settings) == first  # analysed_at kept: not one value differs

        # ... and the comparison can fail: a changed score moves that row's analysed_at
        changed = verdicts.assign(score=[0.9999, 0.1234, 0.0])
        with engine.begin() as conn:
            upsert_scores(conn, changed, start=START, end=END, analysed_at=LATER)
        after = _rows(settings)
        assert after[1:] == first[1:] and after[0] != first[0]
        with engine.connect() as conn:
            score, analysed_at = conn.exec_driver_sql(
                "SELECT score, analysed_at FROM fraud_scores WHERE transaction_id = %s",
                (FIRST_ID,),
            ).one()
        assert score == Decimal("0.9999") and analysed_at == LATER.replace(tzinfo=None)
        with engine.begin() as conn:
            assert (
                upsert_scores(conn, verdicts.iloc[:0], start=START, end=END, analysed_at=LATER) == 0
            )
    finally:
        engine.dispose()


def test_the_label_upsert_stores_what_sqlalchemy_stores(stored_ids: None, settings: Settings):
    """Fraud and not, a whole second and microseconds, quotes, a backslash and non-ASCII in
    the external id (the importer's checks would refuse some of these; the store must not
    mangle them), more rows than one statement holds."""
    n = 10_003  # one statement's worth and three more
    external = [f"lab-{k}" for k in range(n)]
    external[:3] = ["it's", 'a "q" \\ b', "ünïcödé-€"]
    moments = np.array(
        [to_us(EARLIER), to_us(EARLIER.replace(microsecond=0))] + [to_us(EARLIER)] * (n - 2)
    )
    labels = LabelColumns(
        transaction_id=np.arange(FIRST_ID, FIRST_ID + n, dtype=np.int64),
        external_id=external,
        is_fraud=np.arange(n) % 3 == 0,
        labelled_at_us=moments,
        source="import",
    )
    engine = writer_engine(settings)
    done: list[int] = []
    try:
        connection = engine.raw_connection()
        try:
            with connection.cursor() as cursor:
                assert upsert_labels(cursor, labels, done.append) == n
            connection.commit()
        finally:
            connection.close()
        assert done == [10_000, n]
        first = _rows(settings, "fraud_labels")
        assert len(first) == n and first[1][1] == 'a "q" \\ b' and first[2][1] == "ünïcödé-€"
        assert (
            first[0][2] == 1
            and first[1][2] == 0
            and first[1][3] == EARLIER.replace(microsecond=0, tzinfo=None)
        )
        with engine.begin() as conn:  # the same labels as dicts through SQLAlchemy, later
            rows = [
                {
                    "transaction_id": FIRST_ID + k,
                    "external_id": external[k],
                    "is_fraud": bool(labels.is_fraud[k]),
                    "labelled_at": LATER,
                    "source": "import",
                }
                for k in range(n)
            ]
            conn.execute(UPSERT_LABELS, rows)
        assert _rows(settings, "fraud_labels") == first  # labelled_at kept: nothing differs
        # ... and the comparison can fail: a flipped label moves its labelled_at
        rows[5]["is_fraud"] = not rows[5]["is_fraud"]
        with engine.begin() as conn:
            conn.execute(UPSERT_LABELS, rows)
        after = _rows(settings, "fraud_labels")
        assert after[5] != first[5] and after[:5] == first[:5] and after[6:] == first[6:]
    finally:
        engine.dispose()


def test_two_page_upserts_that_deadlock_are_both_written(stored_ids: None, settings: Settings):
    """Two writers upserting the same two stored rows in opposite orders deadlock: InnoDB rolls
    one back (1213). `db.retry.in_transaction` runs it again, so both pages are written, as the
    nightly run's page threads and the scorer need; without it the victim's error escapes."""
    import threading

    import pymysql

    from ledgerguard.db.retry import in_transaction, is_lock_conflict

    verdicts = _verdicts().iloc[:2]
    engine = writer_engine(settings)
    met = threading.Barrier(2, timeout=30)
    attempts: list[str] = []
    errors: list[BaseException] = []

    def page(name: str, order: list[int], score: float) -> None:
        def work(conn) -> None:  # type: ignore[no-untyped-def]
            attempts.append(name)
            first = len([a for a in attempts if a == name]) == 1
            for n, position in enumerate(order):
                row = verdicts.iloc[[position]].assign(score=score)
                upsert_scores(conn, row, start=START, end=END, analysed_at=LATER)
                if first and n == 0:
                    met.wait()  # each holds its first row before it asks for the other's

        try:
            in_transaction(engine, work, pause=0.01)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    try:
        with engine.begin() as conn:
            upsert_scores(conn, verdicts, start=START, end=END, analysed_at=EARLIER)
        threads = [
            threading.Thread(target=page, args=("a", [0, 1], 0.5)),
            threading.Thread(target=page, args=("b", [1, 0], 0.7)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        assert len(attempts) == 3  # one of the two ran again after its deadlock
        with engine.connect() as conn:
            scores = conn.exec_driver_sql(
                "SELECT score FROM fraud_scores WHERE transaction_id >= %s", (FIRST_ID,)
            ).scalars()
            # both rows hold the score of the page committed last
            assert set(scores) in ({Decimal("0.5")}, {Decimal("0.7")})
        assert is_lock_conflict(pymysql.err.OperationalError(1213, "Deadlock found"))
        assert not is_lock_conflict(pymysql.err.OperationalError(2013, "Lost connection"))
    finally:
        engine.dispose()
