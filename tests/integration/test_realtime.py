"""The streaming scorer against the real primary + replica, run as `ledgerguard up` runs it.

Each test starts the scorer as a background process (`realtime.process.start_scorer`: its own
pid file, log and metrics port) and stops it at the end. Data: users from 91,000,000 up,
transactions of *now* (what the stream sees), far from the other modules' users.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from ledgerguard.cluster.local import LocalCluster
from ledgerguard.db.engines import writer_engine
from ledgerguard.fraud.pipeline import analyze_interval, day_interval
from ledgerguard.realtime.alerts import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    redeliver,
    verify,
)
from ledgerguard.realtime.process import running_pid, start_scorer, stop_scorer
from ledgerguard.settings import Settings
from tests.support import api_conn, free_ports

_users = itertools.count(91_000_000, 1_000)


@pytest.fixture
def scorer_settings(settings: Settings, cluster: LocalCluster) -> Settings:
    """The session settings with free metrics ports for the scorer (partition K listens on the
    port + K, so the next one must be free too)."""
    for _ in range(50):
        (port,) = free_ports(1)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return settings.model_copy(update={"scorer_metrics_port": port})
    raise RuntimeError("no two consecutive free ports")


@contextlib.contextmanager
def scorer_running(settings: Settings) -> Iterator[int]:
    start_scorer(settings, timeout=120)
    try:
        pid = running_pid(settings)
        assert pid is not None
        yield pid
    finally:
        stop_scorer(settings)


def wait_for(condition: Callable[[], Any], timeout: float = 30, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")


def insert(settings: Settings, rows: list[tuple[int, str, int | None, datetime]]) -> list[int]:
    """Insert (user, USD amount, terminal, occurred_at) rows on the primary; their ids."""
    ids = []
    with api_conn(settings) as conn, conn.cursor() as cur:
        for user, amount, terminal, occurred_at in rows:
            cur.execute(
                "INSERT INTO transactions (user_id, amount, currency, amount_usd, terminal_id, "
                "occurred_at, created_at) VALUES (%s, %s, 'USD', %s, %s, %s, %s)",
                (
                    user,
                    amount,
                    amount,
                    terminal,
                    occurred_at.replace(tzinfo=None),
                    datetime.now(UTC).replace(tzinfo=None),
                ),
            )
            ids.append(cur.lastrowid)
    return ids


def confirm_fraud(settings: Settings, ids: list[int], *, at: datetime) -> None:
    """Label `ids` as fraud, known since `at` (rows of `fraud_labels`, as the label API writes)."""
    with api_conn(settings) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO fraud_labels (transaction_id, is_fraud, labelled_at, source) "
            "VALUES (%s, 1, %s, 'test')",
            [(i, at.replace(tzinfo=None)) for i in ids],
        )


def scored_both_ways(
    settings: Settings, row: tuple[int, str, int | None, datetime]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Insert `row` while the scorer runs and wait for its real-time verdict, then run the
    nightly analysis of its day: (the verdict after the stream, after the nightly run), each
    with the transaction's `id`."""
    with scorer_running(settings):
        ids = insert(settings, [row])
        wait_for(all_scored(settings, ids), what="the payment's real-time verdict")
    stream = verdicts(settings, ids)[ids[0]] | {"id": ids[0]}
    day_start, day_end = day_interval(row[3].date())
    analyze_interval(settings, start=day_start, end=day_end)
    return stream, verdicts(settings, ids)[ids[0]] | {"id": ids[0]}


def verdicts(settings: Settings, ids: list[int]) -> dict[int, dict[str, Any]]:
    """The verdicts of `ids` that have one: the current one (`fraud_scores` when it holds the
    transaction, else the real-time verdict) and the streaming scorer's own (`realtime_*`)."""
    if not ids:
        return {}
    marks = ", ".join(["%s"] * len(ids))
    with api_conn(settings) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT t.id, COALESCE(s.flagged, v.flagged), v.flagged, "
            "COALESCE(s.source, 'realtime'), COALESCE(s.rule_ids, v.rule_ids), "
            "v.scored_at, v.first_scored_at, s.transaction_id IS NOT NULL "
            "FROM transactions t "
            "LEFT JOIN fraud_scores s ON s.transaction_id = t.id "
            "LEFT JOIN realtime_verdicts v ON v.transaction_id = t.id "
            f"WHERE t.id IN ({marks}) "
            "AND (s.transaction_id IS NOT NULL OR v.transaction_id IS NOT NULL)",
            ids,
        )
        return {
            row[0]: {
                "flagged": bool(row[1]),
                "realtime_flagged": None if row[2] is None else bool(row[2]),
                "source": row[3],
                "rule_ids": row[4],
                "realtime_scored_at": row[5],
                "realtime_first_scored_at": row[6],
                "in_fraud_scores": bool(row[7]),
            }
            for row in cur.fetchall()
        }


def all_scored(settings: Settings, ids: list[int]) -> Callable[[], bool]:
    def check() -> bool:
        found = verdicts(settings, ids)
        return len(found) == len(ids) and all(
            v["realtime_scored_at"] is not None for v in found.values()
        )

    return check


def checkpoint(settings: Settings) -> tuple[str, int]:
    with api_conn(settings) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT gtid_pos, transactions_scored FROM scorer_checkpoints "
            "WHERE partition_name = '0/1'"
        )
        row = cur.fetchone()
    return (row[0], int(row[1])) if row else ("", 0)


def card_testing(user: int, terminal: int, at: datetime) -> list[tuple]:
    """Six 5 USD charges within six minutes, then an ordinary payment an hour later."""
    rows = [(user, "5.00", terminal, at + timedelta(minutes=i)) for i in range(6)]
    return [*rows, (user, "42.00", terminal, at + timedelta(hours=1))]


# --- what users see -----------------------------------------------------------------------------
def test_a_posted_transaction_is_scored_and_get_shows_its_risk(
    scorer_settings: Settings, api_url: str, api_key: str
):
    user = next(_users)
    with (
        scorer_running(scorer_settings),
        httpx.Client(base_url=api_url, headers={"X-API-Key": api_key}, timeout=30) as client,
    ):
        ordinary = client.post(
            "/transactions", json={"user_id": user, "amount": "12.50", "currency": "USD"}
        ).json()
        large = client.post(
            "/transactions", json={"user_id": user, "amount": "15000.00", "currency": "USD"}
        ).json()
        assert client.get(f"/transactions/{large['id']}").status_code == 200

        def risk_of(created: dict[str, Any]) -> dict[str, Any] | None:
            body = client.get(
                f"/transactions/{created['id']}",
                params={"consistent_after": created["consistent_after"]},
            ).json()
            return body["risk"]

        risk = wait_for(lambda: risk_of(large), timeout=30, what="the large payment's risk")
        assert risk["flagged"] is True
        assert risk["source"] == "realtime"
        assert risk["rule_ids"] == ["large_amount"]
        assert risk["score"] == "1.0000"
        assert risk["reasons"][0] == "large_amount: 15,000.00 USD is above 10,000.00 USD"
        quiet = wait_for(lambda: risk_of(ordinary), timeout=30, what="the ordinary payment")
        assert quiet["flagged"] is False and quiet["rule_ids"] == []

        alerts = wait_for(
            lambda: [
                a
                for a in client.get("/alerts", params={"limit": 1000}).json()["data"]
                if a["user_id"] == user
            ],
            what="the alert on the replica",
        )
        assert [a["transaction_id"] for a in alerts] == [large["id"]]
        assert alerts[0]["amount"] == "15000.00" and alerts[0]["source"] == "realtime"
        by_rule = client.get("/alerts", params={"rule": "large_amount", "limit": 1000}).json()
        assert large["id"] in [a["transaction_id"] for a in by_rule["data"]]
        other = client.get("/alerts", params={"rule": "velocity", "limit": 1000}).json()
        assert large["id"] not in [a["transaction_id"] for a in other["data"]]
        assert client.get("/alerts", params={"rule": "DROP TABLE"}).status_code == 422


def test_alerts_are_newest_first_with_a_cursor(
    scorer_settings: Settings, api_url: str, api_key: str
):
    user = next(_users)
    now = datetime.now(UTC)
    with scorer_running(scorer_settings):
        ids = insert(scorer_settings, [(user, "20000.00", None, now) for _ in range(3)])
        wait_for(all_scored(scorer_settings, ids), what="three large payments")
    with httpx.Client(base_url=api_url, headers={"X-API-Key": api_key}, timeout=30) as client:
        wait_for(
            lambda: (
                client.get("/alerts", params={"limit": 1}).json()["data"][0]["transaction_id"]
                >= ids[-1]
            ),
            what="the replica",
        )
        seen: list[int] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 2, "rule": "large_amount"}
            if cursor:
                params["cursor"] = cursor
            page = client.get("/alerts", params=params).json()
            seen += [a["transaction_id"] for a in page["data"]]
            cursor = page["next"]
            if cursor is None:
                break
    assert seen == sorted(seen, reverse=True)
    assert set(ids) <= set(seen)


# --- one implementation: the stream and the nightly run agree ------------------------------------
def test_the_stream_and_the_nightly_run_give_the_same_flags(
    scorer_settings: Settings, cluster: LocalCluster
):
    """Card testing (every charge of the burst, the first ones too), structuring, a large
    amount, a spending anomaly and ordinary payments: same flags from both scorers."""
    now = datetime.now(UTC).replace(microsecond=0)
    start_of_day, _ = day_interval(now.date())
    at = max(start_of_day + timedelta(minutes=1), now - timedelta(hours=3))
    tester, structurer, big, regular = (next(_users) for _ in range(4))
    rows = card_testing(tester, 9_100_001, at)
    rows += [
        (structurer, amount, 9_100_002, at + timedelta(minutes=10 * i))
        for i, amount in enumerate(("9500.00", "9400.00", "9300.00"))
    ]
    rows += [(big, "10000.01", 9_100_003, at)]
    rows += [(regular, "30.00", 9_100_004, at - timedelta(days=d)) for d in range(10, 1, -1)]
    rows += [(regular, "400.00", 9_100_004, at)]
    with scorer_running(scorer_settings):
        ids = []
        for row in rows:  # one commit each, as the API does
            ids += insert(scorer_settings, [row])
        wait_for(all_scored(scorer_settings, ids), what="every transaction's verdict")
        # revisions: the first charges of the burst are flagged once the burst completes
        wait_for(
            lambda: all(verdicts(scorer_settings, ids[:6])[i]["realtime_flagged"] for i in ids[:6]),
            what="the burst's first charges revised",
        )
    stream = {i: v["realtime_flagged"] for i, v in verdicts(scorer_settings, ids).items()}
    assert sum(stream.values()) == 6 + 3 + 1 + 1, stream

    day_start, day_end = day_interval(at.date())
    analyze_interval(scorer_settings, start=day_start, end=day_end)
    older = [i for i, row in zip(ids, rows, strict=True) if row[3] < day_start]
    nightly_scored = verdicts(scorer_settings, ids)
    for transaction_id in set(ids) - set(older):
        row = nightly_scored[transaction_id]
        # the nightly run stores flagged verdicts and revisions of rows already stored (every
        # real-time flag): a transaction it did not store is one it did not flag
        if stream[transaction_id]:
            assert row["source"] == "nightly"
        nightly_flag = row["flagged"] if row["source"] == "nightly" else False
        assert nightly_flag == stream[transaction_id], (transaction_id, row)
        # both stay visible: the nightly verdict and the real-time one
        assert row["realtime_flagged"] == stream[transaction_id]


def test_the_nightly_run_reads_one_more_day_of_labels_than_the_stream(scorer_settings: Settings):
    """The label horizon per path: a terminal's first fraud day is exactly `label_delay_days`
    before today, so its labels are all in by the end of today. The nightly run of today
    flags a new customer's payment there (`terminal_risk`); the stream, which scores it as it
    happens (`FraudParameters.at_payment_time`), reads the labels of the day before only and
    does not. The learnt compromise lengths are off so other tests' terminals do not weigh in."""
    fraud = scorer_settings.fraud.model_copy(update={"terminal_compromise_history_days": 0})
    settings = scorer_settings.model_copy(update={"fraud": fraud})
    delay, terminal = fraud.label_delay_days, 9_300_001
    now = datetime.now(UTC).replace(microsecond=0)
    day_start, _ = day_interval(now.date())
    fraud_day = day_start - timedelta(days=delay) + timedelta(hours=1)
    users = [next(_users) for _ in range(6)]
    insert(settings, [(u, "20.00", terminal, fraud_day - timedelta(days=2)) for u in users[:2]])
    frauds = insert(
        settings,
        [
            (u, "20.00", terminal, fraud_day + timedelta(minutes=i))
            for i, u in enumerate(users[2:5])
        ],
    )
    confirm_fraud(settings, frauds, at=now)
    at = max(day_start + timedelta(minutes=1), now - timedelta(hours=1))
    stream, nightly = scored_both_ways(settings, (users[5], "20.00", terminal, at))
    assert stream["realtime_flagged"] is False
    assert (nightly["source"], nightly["flagged"]) == ("nightly", True), nightly
    assert "terminal_risk" in nightly["rule_ids"]


def test_fraud_confirmed_early_flags_the_terminal_in_both_scorers(scorer_settings: Settings):
    """Two customers' payments at a terminal yesterday, confirmed as fraud at once (an
    analyst's decision, not a chargeback a week later): a third customer's payment there today
    is flagged by the stream as it happens and by the nightly run, which says why. The nightly
    run of yesterday did not know the labels yet: a fourth customer's payment there after the
    frauds stays unflagged."""
    fraud = scorer_settings.fraud.model_copy(update={"terminal_early_fraud_min_customers": 2})
    scorer_settings = scorer_settings.model_copy(update={"fraud": fraud})
    terminal = 9_300_002
    now = datetime.now(UTC).replace(microsecond=0)
    day_start, _ = day_interval(now.date())
    yesterday = day_start - timedelta(hours=12)
    users = [next(_users) for _ in range(4)]
    frauds = insert(
        scorer_settings,
        [(u, "20.00", terminal, yesterday + timedelta(minutes=i)) for i, u in enumerate(users[:2])],
    )
    witness = insert(
        scorer_settings, [(users[3], "20.00", terminal, yesterday + timedelta(hours=1))]
    )
    confirm_fraud(scorer_settings, frauds, at=now)
    at = max(day_start + timedelta(minutes=1), now - timedelta(hours=1))
    payment = (users[2], "20.00", terminal, at)
    stream, nightly = scored_both_ways(scorer_settings, payment)
    assert stream["realtime_flagged"] is True
    assert (nightly["source"], nightly["flagged"]) == ("nightly", True), nightly
    with api_conn(scorer_settings) as conn, conn.cursor() as cur:
        cur.execute("SELECT reasons FROM fraud_scores WHERE transaction_id = %s", [stream["id"]])
        (reasons,) = cur.fetchone()
    assert "terminal_risk: 2 other customers' payments at terminal 9300002" in reasons
    # the nightly run of yesterday knew neither label (both came today)
    analyze_interval(scorer_settings, start=day_start - timedelta(days=1), end=day_start)
    with api_conn(scorer_settings) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM fraud_scores WHERE transaction_id = %s AND flagged = 1", witness
        )
        assert cur.fetchone()[0] == 0


def test_a_revised_verdict_keeps_the_time_of_the_first(scorer_settings: Settings):
    """A structuring group completed by a later payment revises its first member's verdict:
    `realtime_scored_at` moves with the revision, `realtime_first_scored_at` (what the bench's
    commit -> verdict latency reads) stays the first verdict's."""
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    structurer = next(_users)
    with scorer_running(scorer_settings):
        (first,) = insert(scorer_settings, [(structurer, "9500.00", 9_100_005, at)])
        wait_for(all_scored(scorer_settings, [first]), what="the first payment's verdict")
        before = verdicts(scorer_settings, [first])[first]
        assert before["realtime_flagged"] is False
        assert before["realtime_first_scored_at"] == before["realtime_scored_at"]
        insert(scorer_settings, [(structurer, "9400.00", 9_100_005, at + timedelta(minutes=10))])
        wait_for(
            lambda: verdicts(scorer_settings, [first])[first]["realtime_flagged"],
            what="the first payment revised into the structuring group",
        )
    after = verdicts(scorer_settings, [first])[first]
    assert after["realtime_first_scored_at"] == before["realtime_first_scored_at"]
    assert after["realtime_scored_at"] > before["realtime_scored_at"]


# --- crash safety ------------------------------------------------------------------------------
def test_kill_9_under_load_then_restart_every_transaction_has_one_verdict(
    scorer_settings: Settings,
):
    users = [next(_users) for _ in range(20)]
    ids: list[int] = []
    stop = threading.Event()

    def write() -> None:
        k = 0
        while not stop.is_set():
            ids.extend(
                insert(scorer_settings, [(users[k % 20], "17.00", 9_100_010, datetime.now(UTC))])
            )
            k += 1

    start_scorer(scorer_settings, timeout=120)
    writer = threading.Thread(target=write)
    writer.start()
    try:
        time.sleep(2)
        pid = running_pid(scorer_settings)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: running_pid(scorer_settings) is None, what="the killed scorer gone")
        time.sleep(1)  # transactions committed while no scorer runs
        start_scorer(scorer_settings, timeout=120)
        time.sleep(2)
    finally:
        stop.set()
        writer.join()
    try:
        assert len(ids) > 50
        wait_for(all_scored(scorer_settings, ids), timeout=60, what="every verdict after restart")
    finally:
        stop_scorer(scorer_settings)
    with api_conn(scorer_settings) as conn, conn.cursor() as cur:
        marks = ", ".join(["%s"] * len(ids))
        cur.execute(
            f"SELECT COUNT(*), COUNT(DISTINCT transaction_id) FROM realtime_verdicts "
            f"WHERE transaction_id IN ({marks})",
            ids,
        )
        assert cur.fetchone() == (len(ids), len(ids))
    # every flagged verdict is in the alert queue's table, and what it holds is the verdict
    found = verdicts(scorer_settings, ids)
    assert all(v["in_fraud_scores"] for v in found.values() if v["realtime_flagged"])
    assert all(v["flagged"] == v["realtime_flagged"] for v in found.values())


def test_a_restart_resumes_from_the_checkpoint_not_from_the_start(scorer_settings: Settings):
    user = next(_users)
    with scorer_running(scorer_settings):
        first = insert(scorer_settings, [(user, "110.00", None, datetime.now(UTC))])
        wait_for(all_scored(scorer_settings, first), what="the first verdict")
    position, scored = checkpoint(scorer_settings)
    assert position
    stamp_before = verdicts(scorer_settings, first)[first[0]]["realtime_scored_at"]
    while_stopped = insert(
        scorer_settings, [(user, "120.00", None, datetime.now(UTC)) for _ in range(5)]
    )
    with scorer_running(scorer_settings):
        wait_for(all_scored(scorer_settings, while_stopped), what="the missed transactions")
        wait_for(lambda: checkpoint(scorer_settings)[1] >= scored + 5, what="the checkpoint")
    new_position, new_scored = checkpoint(scorer_settings)
    assert new_position != position
    # exactly the five it missed were scored, not everything since the first start
    assert new_scored - scored == 5
    # (amounts above the velocity rule's small charges: no burst revises the first verdict)
    assert verdicts(scorer_settings, first)[first[0]]["realtime_scored_at"] == stamp_before


# --- faults ------------------------------------------------------------------------------------
def test_a_migration_while_running_is_followed_not_fatal(
    scorer_settings: Settings, cluster: LocalCluster
):
    from ledgerguard.cluster.admin import admin_connection, run
    from ledgerguard.db.dialect import Statement

    user = next(_users)
    password = scorer_settings.mysql_root_password.get_secret_value()
    db = scorer_settings.database
    with scorer_running(scorer_settings) as pid:
        before = insert(scorer_settings, [(user, "15.00", None, datetime.now(UTC))])
        wait_for(all_scored(scorer_settings, before))
        with admin_connection(cluster.specs["primary"], password=password) as conn:
            run(
                conn,
                Statement(
                    f"ALTER TABLE `{db}`.transactions ADD COLUMN rt_note VARCHAR(8) NULL FIRST"
                ),
            )
            run(conn, Statement(f"CREATE TABLE `{db}`.rt_unknown (id INT PRIMARY KEY, v INT)"))
            run(conn, Statement(f"INSERT INTO `{db}`.rt_unknown VALUES (1, 2)"))
        try:
            after = insert(scorer_settings, [(user, "25000.00", None, datetime.now(UTC))])
            wait_for(all_scored(scorer_settings, after), what="a verdict after the ALTER")
            assert verdicts(scorer_settings, after)[after[0]]["realtime_flagged"] is True
            assert running_pid(scorer_settings) == pid
        finally:
            with admin_connection(cluster.specs["primary"], password=password) as conn:
                run(conn, Statement(f"ALTER TABLE `{db}`.transactions DROP COLUMN rt_note"))
                run(conn, Statement(f"DROP TABLE `{db}`.rt_unknown"))
        last = insert(scorer_settings, [(user, "16.00", None, datetime.now(UTC))])
        wait_for(all_scored(scorer_settings, last), what="a verdict after the second ALTER")
        assert running_pid(scorer_settings) == pid


def test_the_replica_down_the_scorer_waits_and_resumes(
    scorer_settings: Settings, cluster: LocalCluster
):
    from ledgerguard.realtime.partition import Partition
    from ledgerguard.realtime.status import read_status

    user = next(_users)
    with scorer_running(scorer_settings) as pid:
        replica = cluster.server("replica")
        replica.stop(root_password=cluster.root_password)
        try:
            wait_for(
                lambda: (
                    (read_status(scorer_settings, Partition()) or {}).get("state")
                    == "waiting for the replica"
                ),
                what="the status to say so",
            )
            ids = insert(scorer_settings, [(user, "30000.00", None, datetime.now(UTC))])
        finally:
            cluster.up()
        wait_for(all_scored(scorer_settings, ids), timeout=60, what="the verdict after the outage")
        assert running_pid(scorer_settings) == pid
        status = wait_for(
            lambda: (s := read_status(scorer_settings, Partition())) and s["connected"] and s,
            what="connected again",
        )
        assert status["reconnects"] >= 1
        # everything scored: the once-a-second report measures no lag against the replica
        caught_up = wait_for(
            lambda: (
                (s := read_status(scorer_settings, Partition()))
                and s["lag_transactions"] == 0
                and s
            ),
            what="no lag once the verdict is in",
        )
        assert caught_up["lag_seconds"] == 0.0 and caught_up["position"]
        metrics = httpx.get(f"http://127.0.0.1:{scorer_settings.scorer_metrics_port}/metrics").text
        assert "ledgerguard_scorer_reconnects_total" in metrics
        assert "ledgerguard_scorer_verdict_latency_seconds_bucket" in metrics
        assert 'ledgerguard_scorer_cpu_seconds_total{stage="score"}' in metrics


def test_partitions_split_the_users_and_keep_their_own_checkpoints(scorer_settings: Settings):
    from ledgerguard.realtime.partition import Partition

    parts = [Partition(0, 2), Partition(1, 2)]
    first = next(_users)  # even: 91,000,000 + k * 1,000
    try:
        for part in parts:
            start_scorer(scorer_settings, part, timeout=120)
        ids = insert(
            scorer_settings,
            [(first + k, "20000.00", None, datetime.now(UTC)) for k in range(4)],
        )
        wait_for(all_scored(scorer_settings, ids), what="verdicts from both partitions")
    finally:
        for part in parts:
            stop_scorer(scorer_settings, part)
    with api_conn(scorer_settings) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT partition_name FROM scorer_checkpoints WHERE partition_name IN ('0/2', '1/2')"
        )
        assert sorted(row[0] for row in cur.fetchall()) == ["0/2", "1/2"]


def test_a_purged_checkpoint_names_the_fix_and_rebuild_scores_the_gap(
    scorer_settings: Settings, cluster: LocalCluster
):
    from ledgerguard.cluster.admin import admin_connection, run
    from ledgerguard.db.dialect import Statement
    from ledgerguard.realtime.errors import ScorerError

    user = next(_users)
    with scorer_running(scorer_settings):
        ids = insert(scorer_settings, [(user, "120.00", None, datetime.now(UTC))])
        wait_for(all_scored(scorer_settings, ids))
    # the replica's binlog loses everything up to now; the checkpoint points far back
    password = scorer_settings.mysql_root_password.get_secret_value()
    with admin_connection(cluster.specs["replica"], password=password) as conn:
        run(conn, Statement("FLUSH BINARY LOGS"))

        def purged() -> bool:  # a file the stopped scorer's dump thread still reads stays
            last = run(conn, Statement("SHOW BINARY LOGS"))[-1]["Log_name"]
            run(conn, Statement("PURGE BINARY LOGS TO %s", (last,)))
            return len(run(conn, Statement("SHOW BINARY LOGS"))) == 1

        wait_for(purged, what="the replica's old binlogs purged")
    with api_conn(scorer_settings) as conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE scorer_checkpoints SET gtid_pos = '0-1-2', event_at = %s "
            "WHERE partition_name = '0/1'",
            (datetime.now(UTC).replace(tzinfo=None),),
        )
    missed = insert(scorer_settings, [(user, "40000.00", None, datetime.now(UTC))])
    with pytest.raises(ScorerError, match="--rebuild"):
        start_scorer(scorer_settings, timeout=60)
    start_scorer(scorer_settings, timeout=120, rebuild=True)
    try:
        wait_for(all_scored(scorer_settings, missed), what="the gap scored from the table")
        assert verdicts(scorer_settings, missed)[missed[0]]["realtime_flagged"] is True
        later = insert(scorer_settings, [(user, "130.00", None, datetime.now(UTC))])
        wait_for(all_scored(scorer_settings, later), what="streaming again after the rebuild")
    finally:
        stop_scorer(scorer_settings)


# --- the webhook -------------------------------------------------------------------------------
class Receiver:
    """A webhook receiver on a free port: fails the first `failures` requests, records the rest."""

    def __init__(self, failures: int, secret: str) -> None:
        self.failures = failures
        self.secret = secret
        self.requests: list[tuple[str, dict[str, Any], bool]] = []
        self.attempts = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.attempts += 1
                if receiver.attempts <= receiver.failures:
                    self.send_response(500)
                    self.end_headers()
                    return
                valid = verify(body, self.headers[SIGNATURE_HEADER], secret=receiver.secret)
                receiver.requests.append((self.headers[DELIVERY_HEADER], json.loads(body), valid))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_webhook_that_fails_then_recovers_gets_every_alert_once_per_delivery_id(
    scorer_settings: Settings,
):
    receiver = Receiver(failures=3, secret="whsec_new")
    settings = scorer_settings.model_copy(
        update={
            "alert_webhook_url": receiver.url,
            "alert_webhook_secrets": SecretStr("whsec_new,whsec_old"),
        }
    )
    user = next(_users)
    try:
        with scorer_running(settings):
            ids = insert(settings, [(user, "50000.00", None, datetime.now(UTC)) for _ in range(3)])
            wait_for(
                lambda: {r[1]["transaction_id"] for r in receiver.requests} >= set(ids),
                timeout=60,
                what="every alert delivered",
            )
    finally:
        receiver.close()
    mine = [r for r in receiver.requests if r[1]["transaction_id"] in ids]
    delivery_ids = {r[0] for r in mine}
    assert len(delivery_ids) == 3  # one delivery id per alert
    assert all(valid for _, _, valid in mine)  # signed with the receiver's (new) secret
    assert receiver.attempts >= 3 + 3
    assert {r[1]["transaction_id"] for r in mine} == set(ids)


def test_alerts_that_exhaust_their_retries_are_dead_letters_until_redelivered(
    scorer_settings: Settings,
):
    failing = Receiver(failures=10**6, secret="s1")
    settings = scorer_settings.model_copy(
        update={"alert_webhook_url": failing.url, "alert_retry_hours": 0.0001}
    )
    user = next(_users)
    try:
        with scorer_running(settings):
            ids = insert(settings, [(user, "60000.00", None, datetime.now(UTC))])
            wait_for(lambda: dead_letters(settings, ids), timeout=60, what="a dead letter")
    finally:
        failing.close()
    working = Receiver(failures=0, secret="s1")
    try:
        settings = settings.model_copy(update={"alert_webhook_url": working.url})
        engine = writer_engine(settings)
        try:
            requeued, counts = redeliver(settings, engine)
        finally:
            engine.dispose()
        assert requeued >= 1 and counts.delivered >= 1
        assert ids[0] in [r[1]["transaction_id"] for r in working.requests]
        assert not dead_letters(settings, ids)
    finally:
        working.close()


def test_a_hanging_receiver_never_stalls_scoring(scorer_settings: Settings):
    """While a delivery attempt hangs (timeout 60 s), new transactions still get verdicts."""
    entered, release = threading.Event(), threading.Event()

    class Hanging(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            entered.set()
            release.wait(90)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hanging)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings = scorer_settings.model_copy(
        update={
            "alert_webhook_url": f"http://127.0.0.1:{server.server_address[1]}/hook",
            "alert_webhook_timeout": 60.0,
        }
    )
    user = next(_users)
    try:
        with scorer_running(settings):
            insert(settings, [(user, "70000.00", None, datetime.now(UTC))])
            wait_for(entered.is_set, what="a delivery attempt that hangs")
            later = insert(settings, [(user + 1, "80000.00", None, datetime.now(UTC))])
            # within 30 s, i.e. before the hanging attempt's 60 s timeout could free anything
            wait_for(all_scored(settings, later), timeout=30, what="a verdict while it hangs")
            assert not release.is_set()
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def dead_letters(settings: Settings, ids: list[int]) -> list[int]:
    marks = ", ".join(["%s"] * len(ids))
    with api_conn(settings) as conn, conn.cursor() as cur:
        cur.execute(
            f"SELECT transaction_id FROM alert_deliveries WHERE status = 'dead' "
            f"AND transaction_id IN ({marks})",
            ids,
        )
        return [row[0] for row in cur.fetchall()]


def test_a_webhook_url_that_is_not_http_is_refused(settings: Settings):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="http:// or https://"):
        Settings(
            _env_file=None,
            **(settings.model_dump() | {"alert_webhook_url": "ftp://example.com/x"}),
        )


def test_signature_covers_timestamp_and_body():
    from ledgerguard.realtime.alerts import sign

    body = b'{"a":1}'
    header = sign(body, timestamp=1_700_000_000, secrets=["new", "old"])
    assert verify(body, header, secret="old", now=1_700_000_010)
    assert verify(body, header, secret="new", now=1_700_000_010)
    assert not verify(body + b" ", header, secret="new", now=1_700_000_010)
    assert not verify(body, header, secret="other", now=1_700_000_010)
    assert not verify(body, header, secret="new", now=1_700_009_999)  # a replay, too late


def test_the_scorer_uses_the_approved_parameter_set(scorer_settings: Settings):
    """A set approved in the web app (`fraud_parameter_sets`) is what the scorer scores with:
    8,000 USD is not flagged at the settings' 10,000 line, and is at the set's 5,000."""
    from ledgerguard.realtime.partition import Partition
    from ledgerguard.realtime.status import read_status
    from tests.web.support import insert_approved_set, reset_parameter_sets

    set_id = insert_approved_set(scorer_settings, '{"large_amount_usd": "5000.00"}')
    try:
        with scorer_running(scorer_settings):
            ids = insert(scorer_settings, [(next(_users), "8000.00", None, datetime.now(UTC))])
            wait_for(all_scored(scorer_settings, ids), what="the verdict")
            status = read_status(scorer_settings, Partition()) or {}
        verdict = verdicts(scorer_settings, ids)[ids[0]]
        assert verdict["realtime_flagged"] is True and "large_amount" in verdict["rule_ids"]
        assert status["parameter_set"] == set_id
    finally:
        reset_parameter_sets(scorer_settings)  # (the API account may not DELETE)


def test_a_set_approved_while_the_scorer_runs_takes_effect_without_a_restart(
    scorer_settings: Settings,
):
    """8,000 USD: not flagged under the settings; a 5,000 line approved while the scorer runs
    flags the next one (same process: the scorer started again from its checkpoint)."""
    from ledgerguard.realtime.partition import Partition
    from ledgerguard.realtime.scorer import PARAMETER_CHECK_SECONDS
    from ledgerguard.realtime.status import read_status
    from tests.web.support import insert_approved_set, reset_parameter_sets

    user = next(_users)
    try:
        with scorer_running(scorer_settings) as pid:
            before = insert(scorer_settings, [(user, "8000.00", None, datetime.now(UTC))])
            wait_for(all_scored(scorer_settings, before), what="the first verdict")
            set_id = insert_approved_set(scorer_settings, '{"large_amount_usd": "5000.00"}')
            wait_for(
                lambda: (
                    (read_status(scorer_settings, Partition()) or {}).get("parameter_set") == set_id
                ),
                timeout=PARAMETER_CHECK_SECONDS + 60,
                what="the scorer on the new set",
            )
            after = insert(scorer_settings, [(user + 1, "8000.00", None, datetime.now(UTC))])
            wait_for(all_scored(scorer_settings, after), what="the second verdict")
            assert running_pid(scorer_settings) == pid
        found = verdicts(scorer_settings, before + after)
        assert found[before[0]]["realtime_flagged"] is False
        assert found[after[0]]["realtime_flagged"] is True
        assert "large_amount" in found[after[0]]["rule_ids"]
    finally:
        reset_parameter_sets(scorer_settings)


def test_the_fast_row_decoder_reads_what_the_library_reads(
    settings: Settings, cluster: LocalCluster
):
    """`rowdecode` against mysql-replication's own decoding, on the same binlog: NULLs, money
    with and without decimals, large ids, text, microseconds."""
    from ledgerguard.realtime.binlog import executed_position, read_transactions
    from ledgerguard.realtime.replica import replica_flavour

    flavour = replica_flavour(settings)
    start = executed_position(settings, flavour)
    user = next(_users)
    at = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=UTC)
    insert(
        settings,
        [
            (user, "0.0001", None, at),
            (user + 1, "9999999.9999", 2**40, at + timedelta(microseconds=1)),
            (user + 2, "42", 7, at.replace(microsecond=0)),
        ],
    )
    with api_conn(settings) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO transactions (user_id, amount, currency, amount_usd, terminal_id, "
            "merchant_id, external_id, occurred_at, created_at) "
            "VALUES (%s, 123456789012345.1234, 'EUR', NULL, 3, 99, 'ext-é-1', %s, %s)",
            (user + 3, at.replace(tzinfo=None), at.replace(tzinfo=None)),
        )
    cluster.wait_for_replica(timeout=30)
    end = executed_position(settings, flavour)
    fast, _ = read_transactions(
        settings, flavour=flavour, start=start, end=end, server_id=4_950, fast=True
    )
    slow, _ = read_transactions(
        settings, flavour=flavour, start=start, end=end, server_id=4_951, fast=False
    )
    inserts = [c.after for t in fast for c in t.changes if c.table == "transactions"]
    assert len(inserts) == 4
    assert [c for t in fast for c in t.changes] == [c for t in slow for c in t.changes]
    assert inserts[0]["terminal_id"] is None and inserts[0]["amount"] == Decimal("0.0001")
    assert inserts[1]["terminal_id"] == 2**40
    assert inserts[1]["occurred_at"] == datetime(2026, 3, 2, 9, 30, 15, 123457)
    assert inserts[3]["amount_usd"] is None and inserts[3]["external_id"] == "ext-é-1"


def test_bench_scorer_cpu_reports_every_stage_and_leaves_no_checkpoint(
    settings: Settings, cluster: LocalCluster, tmp_path, monkeypatch
):
    """Smoke test of `ledgerguard bench scorer-cpu` (figures belong in benchmarks/README.md)."""
    from typer.testing import CliRunner

    from ledgerguard.cli.main import app as cli
    from ledgerguard.realtime.stages import STAGES
    from tests.support import settings_env

    monkeypatch.chdir(tmp_path)  # no `.env` found: only the test's environment counts
    args = ["bench", "scorer-cpu", "-n", "200", "--users", "50", "--batch-rows", "40"]
    result = CliRunner().invoke(cli, args, env=settings_env(settings))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["scored"] == 200 and report["binlog"]["rows"] == 200
    assert set(report["cpu_us_per_transaction"]) == {*STAGES, "total"}
    assert report["cpu_us_per_transaction"]["decode"] > 0
    with api_conn(settings) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM scorer_checkpoints WHERE partition_name LIKE 'bench%%'")
        assert cur.fetchone()[0] == 0


def test_the_scorer_process_holds_only_its_accounts_secrets(scorer_settings: Settings):
    """Least secrets: the replication, read and API accounts' passwords, no other."""
    settings = scorer_settings
    with scorer_running(settings) as pid:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        # and it runs below the write path's CPU priority (`LEDGERGUARD_SCORER_NICE`)
        nice = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])
    assert nice == os.nice(0) + settings.scorer_nice
    for own in (settings.repl_password, settings.replica_password, settings.api_db_password):
        assert own.get_secret_value().encode() in environ
    for other in (
        settings.mysql_root_password,
        settings.migrate_password,
        settings.monitor_password,
        settings.backup_password,
    ):
        assert other.get_secret_value().encode() not in environ


def test_the_scorer_builds_the_terminal_profile_from_the_replica(scorer_settings: Settings):
    """With the terminal profile on, the scorer's start-up reads it from the replica (the
    nightly run's function) and scores: without it, the engine would refuse every batch."""
    fraud = scorer_settings.fraud.model_copy(update={"terminal_profile_features": True})
    with_profile = scorer_settings.model_copy(update={"fraud": fraud})
    user = next(_users)
    yesterday = datetime.now(UTC) - timedelta(days=1)
    insert(with_profile, [(user, "20.00", 9_200_001, yesterday)])  # in the snapshot's profile
    with scorer_running(with_profile):
        ids = insert(with_profile, [(user, "25.00", 9_200_001, datetime.now(UTC))])
        wait_for(all_scored(with_profile, ids), what="the verdict with the terminal profile")
    assert verdicts(with_profile, ids)[ids[0]]["realtime_flagged"] is False
