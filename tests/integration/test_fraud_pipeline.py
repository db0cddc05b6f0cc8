"""The fraud engine against the real primary + replica: imports, analysis, reports, reruns.

Data of this module: synthetic users/terminals offset by 77,000,000 and external ids prefixed
`itfraud-`, in January-February 2025, far from what other tests write (now, small user ids).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from ledgerguard.cluster.local import LocalCluster
from ledgerguard.db.engines import writer_engine
from ledgerguard.db.tables import fraud_labels, fraud_scores
from ledgerguard.fraud import model_store
from ledgerguard.fraud.backtest import NO_MODEL, backtest, params_from_file
from ledgerguard.fraud.engine.fitting import train_model
from ledgerguard.fraud.engine.fx import fill_missing_usd
from ledgerguard.fraud.engine.model import TrainingError
from ledgerguard.fraud.engine.terminal_days import terminal_days, terminal_profile_days
from ledgerguard.fraud.engine.terminal_history import LABELLED_DAY, fraud_customer_days
from ledgerguard.fraud.errors import FraudAnalysisError, ImportRejected
from ledgerguard.fraud.evaluate import evaluate, scores_from_database
from ledgerguard.fraud.imports.importer import import_labels, import_transactions
from ledgerguard.fraud.pipeline import AnalysisResult, analyze_interval, merge_reports
from ledgerguard.fraud.reader import ReplicaReader, wait_for_replica
from ledgerguard.fraud.reports.compliance import compliance_report
from ledgerguard.fraud.synthetic import SyntheticConfig, generate
from ledgerguard.fraud.synthetic_files import write_dataset
from ledgerguard.fraud.terminal_profile import replica_profile_days
from ledgerguard.fraud.training import train_from_replica
from ledgerguard.money import FxRates
from ledgerguard.settings import Settings
from tests.support import api_conn, replica_sql_thread_stopped

OFFSET = 77_000_000
DAY = date(2025, 2, 5)
START = datetime(2025, 2, 5, tzinfo=UTC)
END = START + timedelta(days=1)
BIG_USER, STRUCTURER = OFFSET + 999_999, OFFSET + 999_998
EXTRA_ROWS = [  # external_id, user_id, terminal_id, amount, currency, occurred_at
    ("itfraud-x1", BIG_USER, OFFSET + 1, "15000.00", "USD", "2025-02-05T09:00:00Z"),
    ("itfraud-x2", BIG_USER, OFFSET + 1, "10000.00", "USD", "2025-02-05T09:05:00Z"),
    ("itfraud-x3", BIG_USER, OFFSET + 1, "10000.01", "USD", "2025-02-05T09:10:00Z"),
    ("itfraud-x4", BIG_USER, OFFSET + 1, "7500000", "XOF", "2025-02-05T09:15:00Z"),
    ("itfraud-x5", STRUCTURER, OFFSET + 2, "9500.00", "USD", "2025-02-05T10:00:00Z"),
    ("itfraud-x6", STRUCTURER, OFFSET + 2, "9400.00", "USD", "2025-02-05T14:00:00Z"),
    ("itfraud-x7", STRUCTURER, OFFSET + 2, "9300.00", "USD", "2025-02-05T18:00:00Z"),
]


@dataclass(frozen=True)
class Loaded:
    transactions: Path
    labels: Path
    rows: int


def _scores(settings: Settings) -> list[tuple]:
    engine = writer_engine(settings)
    try:
        with engine.connect() as conn:
            query = (
                sa.select(fraud_scores)
                .where(
                    fraud_scores.c.user_id >= OFFSET, fraud_scores.c.user_id < OFFSET + 1_000_000
                )
                .order_by(fraud_scores.c.transaction_id)
            )
            return [tuple(row) for row in conn.execute(query)]
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def loaded(
    cluster: LocalCluster, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Loaded]:
    directory = tmp_path_factory.mktemp("fraud-data")
    config = SyntheticConfig(
        customers=250,
        terminals=120,
        days=40,
        seed=77,
        user_id_offset=OFFSET,
        terminal_id_offset=OFFSET,
        external_prefix="itfraud-s",
    )
    tx_path, labels_path = write_dataset(generate(config), directory, name="it")
    with tx_path.open("a") as handle:
        handle.writelines(",".join(map(str, row)) + "\n" for row in EXTRA_ROWS)
    seen: list[tuple[int, int]] = []
    result = import_transactions(
        settings, tx_path, progress=lambda done, total: seen.append((done, total))
    )
    assert result.inserted == result.rows and result.method == "load_data"
    assert seen and seen[-1][0] == seen[-1][1] == result.rows
    steps: list[tuple[int, int]] = []
    labels = import_labels(settings, labels_path, progress=lambda d, t: steps.append((d, t)))
    assert labels.rows == result.rows - len(EXTRA_ROWS) and labels.fraud > 0
    assert steps[-1] == (2 * labels.rows, 2 * labels.rows)  # looked up, then stored
    cluster.wait_for_replica(timeout=60)
    yield Loaded(transactions=tx_path, labels=labels_path, rows=result.rows)


@pytest.fixture(scope="module")
def first_run(loaded: Loaded, cluster: LocalCluster, settings: Settings) -> AnalysisResult:
    return analyze_interval(settings, start=START, end=END)


def test_analysis_end_to_end_on_the_replica(first_run: AnalysisResult, settings: Settings):
    result = first_run
    assert result.analysed > 100 and result.flagged >= 4
    assert result.counts_by_rule["large_amount"] >= 2 and result.counts_by_rule["structuring"] >= 3
    assert result.no_usd_rate >= 1
    assert result.report_path == settings.reports_dir / "fraud_report_2025-02-05.csv"
    lines = result.report_path.read_text().splitlines()
    assert lines[0] == "Transaction ID,User ID,Amount,Currency,Status"
    big = [line for line in lines if f",{BIG_USER}," in line]
    assert [line.split(",")[2:] for line in big] == [
        ["15000.00", "USD", "FLAGGED_FRAUD"],
        ["10000.01", "USD", "FLAGGED_FRAUD"],
    ]
    assert sum(f",{STRUCTURER}," in line for line in lines) == 3
    assert len(lines) - 1 == result.flagged
    details = result.details_path.read_text()
    assert "NO_USD_RATE" in details and "no ECB USD rate for XOF" in details
    assert "structuring: 3 transactions" in details
    stored = _scores(settings)
    assert sum(1 for row in stored if START <= row[2] < END) == result.stored


def test_rerun_changes_nothing(first_run: AnalysisResult, settings: Settings):
    before_rows, before_report = _scores(settings), first_run.report_path.read_bytes()
    before_details = first_run.details_path.read_bytes()
    again = analyze_interval(settings, start=START, end=END)
    assert _scores(settings) == before_rows  # analysed_at included
    assert again.report_path.read_bytes() == before_report
    assert again.details_path.read_bytes() == before_details
    assert (again.flagged, again.counts_by_rule) == (first_run.flagged, first_run.counts_by_rule)


def test_bucketed_runs_merge_to_the_same_report(first_run: AnalysisResult, settings: Settings):
    before_rows, before_report = _scores(settings), first_run.report_path.read_bytes()
    parts = [
        analyze_interval(settings, start=START, end=END, bucket=b, buckets=3) for b in range(3)
    ]
    assert all(part.report_path is None for part in parts)
    assert sum(part.analysed for part in parts) == first_run.analysed
    assert sum(part.flagged for part in parts) == first_run.flagged
    merged = merge_reports(settings, start=START, end=END)
    assert merged.report_path.read_bytes() == before_report
    assert _scores(settings) == before_rows


def test_small_pages_hold_whole_users_and_give_the_same_verdicts(
    first_run: AnalysisResult, settings: Settings
):
    # Other tests' users (small ids) and this module's (77M) leave a wide gap in the user ids:
    # page ends come from row counts, so no page swallows the rest of the table.
    since, page_rows = START - timedelta(days=settings.fraud.lookback_days), 1_000
    with ReplicaReader(settings) as replica:
        pages = list(replica.pages(since=since, until=END, page_rows=page_rows))
        rows_read = replica.rows_read
    assert len(pages) > 3 and sum(len(page) for page in pages) == rows_read
    assert all(len(page) <= page_rows or page["user_id"].nunique() == 1 for page in pages)
    users = [set(page["user_id"]) for page in pages]
    assert sum(len(u) for u in users) == len(set().union(*users))  # no user split across pages

    before_rows, before_report = _scores(settings), first_run.report_path.read_bytes()
    small = settings.model_copy(
        update={"fraud": settings.fraud.model_copy(update={"page_rows": page_rows})}
    )
    again = analyze_interval(small, start=START, end=END)
    assert again.pages > 3 and again.rows_read == first_run.rows_read
    assert _scores(settings) == before_rows
    assert again.report_path.read_bytes() == before_report


def test_bad_interval_is_refused(settings: Settings):
    with pytest.raises(FraudAnalysisError, match="timezone-aware"):
        analyze_interval(settings, start=datetime(2025, 2, 5), end=datetime(2025, 2, 6))
    with pytest.raises(FraudAnalysisError, match="bucket"):
        analyze_interval(settings, start=START, end=END, bucket=3, buckets=3)


def _count(settings: Settings, prefix: str) -> int:
    with api_conn(settings) as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM transactions WHERE external_id LIKE %s", (prefix + "%",)
        )
        return cursor.fetchone()[0]


def test_bad_file_is_refused_whole(
    healthy_cluster: LocalCluster, settings: Settings, tmp_path: Path
):
    path = tmp_path / "bad.csv"
    good = "".join(
        f"itbad-{i},{OFFSET + 5},{OFFSET},12.50,USD,2025-02-05T10:00:00Z\n" for i in range(500)
    )
    path.write_text(
        "external_id,user_id,terminal_id,amount,currency,occurred_at\n"
        + good
        + "itbad-x,1,1,12.345,USD,2025-02-05T10:00:00Z\n"
    )
    with pytest.raises(ImportRejected) as info:
        import_transactions(settings, path)
    assert [error.line for error in info.value.errors] == [502]
    assert _count(settings, "itbad-") == 0


def test_insert_path_and_reimport_is_a_no_op(
    healthy_cluster: LocalCluster, settings: Settings, tmp_path: Path
):
    path = tmp_path / "small.csv"
    path.write_text(
        "external_id,user_id,terminal_id,amount,currency,occurred_at\n"
        + "".join(
            f"itins-{i},{OFFSET + 6},,{i + 1}.25,EUR,2025-02-04T10:00:00Z\n" for i in range(300)
        )
        + "it'ins\\q,1,1,1,JPY,2025-02-04T10:00:00Z\n"  # quote and backslash survive
    )
    first = import_transactions(settings, path, method="insert")
    assert (first.inserted, first.method) == (301, "insert")
    again = import_transactions(settings, path)
    assert (again.inserted, again.skipped) == (0, 301)
    with api_conn(settings) as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT amount, amount_usd, terminal_id FROM transactions WHERE external_id = 'itins-0'"
        )
        amount, amount_usd, terminal = cursor.fetchone()
        assert str(amount) == "1.2500" and amount_usd > amount and terminal is None
        cursor.execute("SELECT COUNT(*) FROM transactions WHERE external_id = %s", ("it'ins\\q",))
        assert cursor.fetchone()[0] == 1


def test_labels_for_unknown_transactions_are_refused(
    loaded: Loaded, settings: Settings, tmp_path: Path
):
    path = tmp_path / "labels.csv"
    path.write_text("external_id,is_fraud\nitfraud-x1,1\nnope-1,1\nitfraud-x2,maybe\n")
    with pytest.raises(ImportRejected) as info:
        import_labels(settings, path)
    assert [error.line for error in info.value.errors] == [3, 4]
    engine = writer_engine(settings)
    try:
        with engine.connect() as conn:
            query = sa.select(sa.func.count()).where(fraud_labels.c.external_id == "itfraud-x1")
            assert conn.execute(query).scalar() == 0
    finally:
        engine.dispose()


def test_labelled_at_follows_the_api_range(loaded: Loaded, settings: Settings, tmp_path: Path):
    path = tmp_path / "labels.csv"
    path.write_text(
        "external_id,is_fraud,labelled_at\n"
        "itfraud-x1,1,1998-12-31T23:59:59Z\n"
        "itfraud-x2,0,2999-01-01T00:00:00Z\n"
    )
    with pytest.raises(ImportRejected) as info:
        import_labels(settings, path)
    messages = {error.line: str(error) for error in info.value.errors}
    assert sorted(messages) == [2, 3], messages
    assert "labelled_at '1998-12-31T23:59:59Z' is before 1999" in messages[2]
    assert "labelled_at '2999-01-01T00:00:00Z' is in the future" in messages[3]


def test_compliance_report_of_a_day(first_run: AnalysisResult, settings: Settings):
    report = compliance_report(settings, day=DAY)
    ctr = report.ctr_path.read_text().splitlines()
    assert ctr[0] == "User ID,Transactions,Total USD,Unconverted Transactions,Status"
    mine = [line for line in ctr if line.startswith(f"{BIG_USER},")]
    assert mine == [f"{BIG_USER},4,35000.0100,1,CTR_REQUIRED"]
    structuring = report.structuring_path.read_text().splitlines()
    assert any(line.startswith(f"{STRUCTURER},3,28200.0000,") for line in structuring)
    assert report.ctr_users >= 2 and report.structuring_users >= 1


def test_evaluation_of_a_stored_run(first_run: AnalysisResult, loaded: Loaded, settings: Settings):
    frame = scores_from_database(settings, labels_path=loaded.labels, start=START, end=END)
    assert len(frame) == first_run.analysed - len(EXTRA_ROWS)  # the extra rows have no label
    table = evaluate(frame).set_index("pattern")
    assert table.loc["overall", "positives"] == frame["is_fraud"].sum()
    assert 0 < table.loc["overall", "recall"] <= 1


def test_users_cut_short_by_the_server_are_read_row_by_row(
    first_run: AnalysisResult, settings: Settings
):
    # A page comes one row per user (GROUP_CONCAT); a list cut short by the server's length
    # limit must be noticed and read again row by row, never parsed half.
    since = START - timedelta(days=settings.fraud.lookback_days)
    with ReplicaReader(settings) as replica:
        whole = pd.concat(list(replica.pages(since=since, until=END, page_rows=1_000_000)))
    with ReplicaReader(settings) as replica:
        with replica._connection.cursor() as cursor:
            cursor.execute("SET SESSION group_concat_max_len = 200")  # ~3 transactions
        cut = pd.concat(list(replica.pages(since=since, until=END, page_rows=1_000_000)))
        with pytest.raises(FraudAnalysisError, match="cut the transaction list of terminal"):
            replica.terminal_tables(since=since, until=END)
    assert whole["user_id"].value_counts().max() > 3  # the limit did cut lists short
    key = ["user_id", "ts_us", "transaction_id"]
    pd.testing.assert_frame_equal(
        cut.sort_values(key).reset_index(drop=True), whole.sort_values(key).reset_index(drop=True)
    )


def test_the_replica_reads_who_was_defrauded_where_as_memory_does(
    first_run: AnalysisResult, settings: Settings
):
    """`terminal_tables` (one grouped query over the confirmed frauds) gives the daily counts
    and the fraud-customer table that `terminal_days` / `fraud_customer_days` compute from the
    same transactions and labels in memory (training, the evaluation)."""
    since = START - timedelta(days=40)
    with ReplicaReader(settings) as replica:
        days, frauds = replica.terminal_tables(since=since, until=END)
        whole = pd.concat(list(replica.pages(since=since, until=END, page_rows=10**9)))
        fraud_ids, labelled = replica.fraud_labels(
            since=since, until=END, known_by=datetime.now(UTC)
        )
    inside = whole[whole["ts_us"] < int(END.timestamp()) * 1_000_000]
    key = ["terminal_id", "user_id", "day", LABELLED_DAY]
    pd.testing.assert_frame_equal(
        frauds.sort_values(key).reset_index(drop=True),
        fraud_customer_days(inside, fraud_ids, labelled).sort_values(key).reset_index(drop=True),
        check_dtype=False,
    )
    assert len(frauds) > 0 and frauds["user_id"].nunique() > 1
    expected = terminal_days(inside, fraud_ids)
    pd.testing.assert_frame_equal(
        days.sort_values(key[::2]).reset_index(drop=True),
        expected[days.columns].sort_values(key[::2]).reset_index(drop=True),
        check_dtype=False,
    )
    # the frauds read further than the daily counts (an interval's early confirmations):
    # the same fraud rows, the daily frauds only those before the counts' end
    cut = END - timedelta(days=10)
    with ReplicaReader(settings) as replica:
        short, further = replica.terminal_tables(since=since, until=cut, frauds_until=END)
    pd.testing.assert_frame_equal(
        further.sort_values(key).reset_index(drop=True),
        frauds.sort_values(key).reset_index(drop=True),
    )
    before = frauds["day"] < int(cut.timestamp()) // 86_400
    assert (
        0 < short["n_fraud"].sum() == frauds.loc[before, "n_fraud"].sum() < frauds["n_fraud"].sum()
    )


def test_the_analysis_waits_for_the_replica_and_refuses_a_stale_one(
    healthy_cluster: LocalCluster, settings: Settings
):
    with replica_sql_thread_stopped(healthy_cluster, settings):
        with api_conn(settings) as conn, conn.cursor() as cursor:
            cursor.execute(
                "INSERT INTO transactions (user_id, amount, currency, occurred_at, created_at) "
                "VALUES (%s, 1.00, 'USD', '2025-02-05 12:00:00', UTC_TIMESTAMP(6))",
                (OFFSET + 999_997,),
            )
        impatient = settings.model_copy(update={"replica_catch_up_timeout": 1.0})
        with pytest.raises(FraudAnalysisError, match="has not applied"):
            analyze_interval(impatient, start=START, end=END)
    wait_for_replica(settings)  # returns once the row is there
    with ReplicaReader(settings) as reader:
        users = set(
            reader.page(users=(OFFSET + 999_997, OFFSET + 999_998), since=START, until=END)[
                "user_id"
            ]
        )
    assert users == {OFFSET + 999_997}


def test_a_file_of_many_chunks_is_checked_in_a_child_and_refused_whole(
    healthy_cluster: LocalCluster, settings: Settings, tmp_path: Path
):
    # 1,000 rows in chunks of 300: checked in a child process while this one loads. A bad row
    # in the third chunk and an id repeated across chunks refuse the whole file, and the first
    # two chunks, already sent, are rolled back.
    header = "external_id,user_id,terminal_id,amount,currency,occurred_at\n"
    rows = [f"itchunk-{i},{OFFSET + 7},{OFFSET},3.50,USD,2025-02-03T10:00:00Z" for i in range(1000)]
    rows[700] = "itchunk-700,0,1,3.50,USD,2025-02-03T10:00:00Z"  # line 702: user_id
    rows[950] = rows[10]  # line 952 repeats line 12's id, three chunks later
    path = tmp_path / "chunks.csv"
    path.write_text(header + "\n".join(rows) + "\n")
    with pytest.raises(ImportRejected) as info:
        import_transactions(settings, path, chunk_rows=300)
    assert [(e.line, e.message.split(" (")[0]) for e in info.value.errors] == [
        (702, "user_id must be a positive integer"),
        (952, "duplicate external_id 'itchunk-10'"),
    ]
    assert "first on line 12" in info.value.errors[1].message
    assert _count(settings, "itchunk-") == 0

    rows[700], rows[950] = (
        rows[700].replace(",0,", ",5,"),
        "itchunk-\\N,5,,1.00,USD,2025-02-03T11:00:00Z",
    )
    path.write_text(header + "\n".join(rows) + "\n")
    seen: list[tuple[int, int]] = []
    result = import_transactions(
        settings, path, chunk_rows=300, progress=lambda done, total: seen.append((done, total))
    )
    assert (result.rows, result.inserted, result.method) == (1000, 1000, "load_data")
    assert seen[-1] == (1000, 1000)
    with api_conn(settings) as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT terminal_id FROM transactions WHERE external_id = %s", ("itchunk-\\N",)
        )
        assert cursor.fetchall() == ((None,),)  # a literal backslash-N id, a NULL terminal


def _model_versions(settings: Settings) -> set[str | None]:
    with api_conn(settings) as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT model_version FROM fraud_scores "
            "WHERE occurred_at >= %s AND occurred_at < %s AND user_id >= %s",
            (START.replace(tzinfo=None), END.replace(tzinfo=None), OFFSET),
        )
        return {row[0] for row in cursor.fetchall()}


def test_a_promoted_model_joins_the_nightly_score_and_is_named_on_each_verdict(
    first_run: AnalysisResult, loaded: Loaded, settings: Settings, tmp_path: Path
):
    transactions = pd.read_csv(loaded.transactions, dtype=str, keep_default_na=False)
    labels = pd.read_csv(loaded.labels, dtype={"external_id": str}, keep_default_na=False)
    store = tmp_path / "models"
    learned = settings.fraud.model_copy(update={"model_score": "learned"})
    report = train_model(
        transactions, labels, store=store, test_days=10, promote=False, params=learned
    )
    model_store.promote(store, report.version)  # whatever the gate said: this test needs one
    fraud = settings.fraud.model_copy(update={"model_store_dir": store})
    try:
        scored = analyze_interval(
            settings.model_copy(update={"fraud": fraud}), start=START, end=END
        )
        assert _model_versions(settings) == {report.version}
        # the version's learned weights scored the nightly verdicts (the setting is noisy_or)
        assert report.score_combination == "learned"
        assert model_store.card(store, report.version)["combiner"]["weights"]
        reasons = [row[fraud_scores.c.keys().index("reasons")] for row in _scores(settings)]
        assert any("(trained model, learned weight " in text for text in reasons)
        # pages scored one at a time or several at once (`page_threads`) store the same
        # verdicts, timestamps included (they move only with a row's content)
        stored, report_bytes = _scores(settings), scored.report_path.read_bytes()
        for threads in (1, 3):
            small = fraud.model_copy(update={"page_rows": 1_000, "page_threads": threads})
            again = analyze_interval(
                settings.model_copy(update={"fraud": small}), start=START, end=END
            )
            assert again.pages > 3 and again.rows_read == scored.rows_read
            assert (again.analysed, again.flagged, again.counts_by_rule) == (
                scored.analysed,
                scored.flagged,
                scored.counts_by_rule,
            )
            assert _scores(settings) == stored
            assert again.report_path.read_bytes() == report_bytes
        rules_only = analyze_interval(settings, start=START, end=END)
        assert "model" in scored.counts_by_rule and "model" not in rules_only.counts_by_rule
        assert scored.analysed == rules_only.analysed
        assert _model_versions(settings) == {None}
    finally:  # the verdicts of the rules alone again, for whatever runs next
        analyze_interval(settings, start=START, end=END)


def test_the_platform_trains_from_the_replica_and_gates_the_promotion(
    first_run: AnalysisResult, settings: Settings, tmp_path: Path
):
    store = tmp_path / "models"
    report = train_from_replica(
        settings, until=datetime(2025, 2, 17, tzinfo=UTC), days=40, test_days=10, store=store
    )
    # labels of the last 7 days before `until` are not known yet: training stops before them
    assert report.test_since == "2025-01-31T00:00:00+00:00"
    assert report.test_frauds > 0 and report.train_rows > report.test_rows > 0
    card = model_store.card(store, report.version)
    assert card["validation_interval"][1] == "2025-02-10T00:00:00+00:00"
    assert report.promoted == (model_store.promoted(store) == report.version)
    assert report.promoted == (report.average_precision_combined > report.average_precision_rules)
    with pytest.raises(TrainingError, match="no transactions on the replica"):
        train_from_replica(settings, until=datetime(1990, 1, 1, tzinfo=UTC), store=store)


def test_a_backtest_writes_nothing_and_compares_a_draft_with_the_current_rules(
    first_run: AnalysisResult, settings: Settings, tmp_path: Path
):
    before = _scores(settings)
    draft_file = tmp_path / "draft.json"
    draft_file.write_text('{"large_amount_usd": "100000"}')
    draft = params_from_file(draft_file, settings.fraud)
    result = backtest(settings, start=START, end=END, params=draft, model_version=NO_MODEL)
    assert _scores(settings) == before
    current, drafted = result["current"], result["draft"]
    # (other tests of this module add rows to the day after `first_run`)
    assert current["analysed"] == drafted["analysed"] >= first_run.analysed
    assert current["rules"]["large_amount"]["fired"] >= first_run.counts_by_rule["large_amount"]
    assert drafted["rules"]["large_amount"]["fired"] == 0
    assert 0 <= current["precision"] <= 1 and current["frauds"] > 0
    draft_file.write_text('{"large_amount_usdd": 1, "anomaly_ratio": 4}')
    with pytest.raises(FraudAnalysisError, match="unknown parameter large_amount_usdd"):
        params_from_file(draft_file, settings.fraud)


def test_the_terminal_profile_is_read_from_the_replica_for_the_nightly_run_and_the_backtest(
    first_run: AnalysisResult, loaded: Loaded, settings: Settings, tmp_path: Path
):
    """Small pages of users on the replica add up to the profile of all users in memory, and a
    model trained with the profile scores in the nightly run and the backtest."""
    fx = FxRates()
    params = settings.fraud.model_copy(
        update={"terminal_profile_features": True, "page_rows": 1_000}
    )
    since = START - timedelta(days=params.terminal_profile_days)
    with ReplicaReader(settings) as replica:
        paged = replica_profile_days(replica, params, since=since, until=END, fx=fx)
        pages = list(
            replica.pages(
                since=since - timedelta(days=params.lookback_days), until=END, page_rows=10**9
            )
        )
    assert len(pages) == 1
    first_day = int(since.timestamp()) // 86_400
    whole = terminal_profile_days(fill_missing_usd(pages[0], fx), params, first_day=first_day)
    key = ["terminal_id", "day"]
    pd.testing.assert_frame_equal(
        paged.sort_values(key).reset_index(drop=True),
        whole[paged.columns].sort_values(key).reset_index(drop=True),
        check_dtype=False,
    )
    assert paged["n_new"].sum() > 0 and paged["day"].min() == first_day

    transactions = pd.read_csv(loaded.transactions, dtype=str, keep_default_na=False)
    labels = pd.read_csv(loaded.labels, dtype={"external_id": str}, keep_default_na=False)
    store = tmp_path / "models"
    report = train_model(
        transactions, labels, store=store, params=params, test_days=10, promote=False
    )
    assert "terminal_signal_customers_7d" in report.features
    model_store.promote(store, report.version)
    fraud = params.model_copy(update={"model_store_dir": store})
    with_profile = settings.model_copy(update={"fraud": fraud})
    try:
        scored = analyze_interval(with_profile, start=START, end=END)
        assert _model_versions(settings) == {report.version}
        assert "model" in scored.counts_by_rule and scored.analysed >= first_run.analysed
        result = backtest(with_profile, start=START, end=END, params=settings.fraud)
        assert result["current"]["model_version"] == report.version
        assert result["current"]["analysed"] == result["draft"]["analysed"] > 0
    finally:  # the verdicts of the rules alone again, for whatever runs next
        analyze_interval(settings, start=START, end=END)
