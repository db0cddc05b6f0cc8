"""The analyst app over HTTP against the real API server, primary and replica.

Accounts, sessions, CSRF and roles; the queue, claims, decisions that become labels, four eyes;
the audit trail and its INSERT/SELECT-only grant. (Browser tests: test_browser.py.)
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, date, datetime, timedelta

import httpx
import pymysql
import pytest

from ledgerguard.settings import Settings
from tests.support import api_conn
from tests.web.support import (
    PASSWORD,
    csrf_of,
    day_start,
    logged_in,
    login,
    make_user,
    page_csrf,
    post_transaction,
    store_verdict,
)

_days = itertools.count(0)


def fresh_day() -> date:
    """A day no other test uses (queue filters by day stay private to each test)."""
    return date(2018, 3, 1) + timedelta(days=next(_days))


def alert(settings: Settings, api_url: str, api_key: str, score: str = "0.75") -> int:
    occurred = day_start(fresh_day()) + timedelta(hours=10)
    tx = post_transaction(api_url, api_key, amount="15000.00", occurred_at=occurred)
    store_verdict(settings, tx, score=score, occurred_at=occurred)
    return tx


def label_of(settings: Settings, transaction_id: int) -> tuple | None:
    with api_conn(settings) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT is_fraud, source FROM fraud_labels WHERE transaction_id = %s",
            (transaction_id,),
        )
        return cur.fetchone()


def audit_rows(settings: Settings, target: str) -> list[tuple]:
    with api_conn(settings) as conn, conn.cursor() as cur:
        cur.execute(
            f"SELECT actor, action, before_value, after_value FROM `{settings.database}_audit`"
            ".audit_log WHERE target = %s ORDER BY id",
            (target,),
        )
        return list(cur.fetchall())


def test_audit_grant_is_insert_and_select_only(cluster, settings: Settings):
    table = f"`{settings.database}_audit`.audit_log"
    with api_conn(settings) as conn, conn.cursor() as cur:
        cur.execute(
            f"INSERT INTO {table} (at, actor, action, target) VALUES (NOW(6), 'grant-test', 'x', 'y')"
        )
        cur.execute(f"SELECT COUNT(*) FROM {table} WHERE actor = 'grant-test'")
        assert cur.fetchone()[0] >= 1
        for statement in (
            f"UPDATE {table} SET actor = 'rewritten' WHERE actor = 'grant-test'",
            f"DELETE FROM {table} WHERE actor = 'grant-test'",
            f"TRUNCATE TABLE {table}",
        ):
            with pytest.raises(pymysql.err.OperationalError) as refused:
                cur.execute(statement)
            assert refused.value.args[0] in (1142, 1044), refused.value  # command denied
        cur.execute(f"SELECT COUNT(*) FROM {table} WHERE actor = 'rewritten'")
        assert cur.fetchone()[0] == 0


def test_login_cookie_logout_and_lockout(api_url: str, settings: Settings):
    username = make_user(settings)
    with httpx.Client(base_url=api_url, timeout=30) as client:
        assert client.get("/review/queue").status_code == 303  # to the login page
        ok = login(client, username)
        assert ok.status_code == 303, ok.text
        cookie = ok.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "max-age=" in cookie
        assert "secure" not in cookie  # plain http here; `auto` sets it over https
        assert client.get("/review/queue").status_code == 200
        token = page_csrf(client)
        assert client.post("/review/logout", data={"csrf_token": token}).status_code == 303
        client.cookies.set("lg_session", ok.cookies["lg_session"])  # replaying the old cookie
        assert client.get("/review/queue").status_code == 303

    with httpx.Client(base_url=api_url, timeout=30) as client:
        for _ in range(settings.web_login_max_failures):
            assert login(client, username, "wrong password!!").status_code == 401
        locked = login(client, username)  # the right password, but locked now
        assert locked.status_code == 401 and "locked" in locked.text
    actions = [row[1] for row in audit_rows(settings, f"user:{_user_id(settings, username)}")]
    assert actions[:2] == ["login", "logout"]
    assert actions.count("login_failed") == settings.web_login_max_failures


def _user_id(settings: Settings, username: str) -> int:
    with api_conn(settings) as conn, conn.cursor() as cur:
        cur.execute("SELECT id FROM web_users WHERE username = %s", (username,))
        return cur.fetchone()[0]


def test_pages_write_amounts_in_the_currencys_decimals_thousands_separated():
    from decimal import Decimal

    from ledgerguard.web.templating import money

    assert money(Decimal("15000.0000"), "USD") == "15,000.00 USD"
    assert money(Decimal("2000000.0000"), "JPY") == "2,000,000 JPY"
    assert money(Decimal("0.5000"), "EUR") == "0.50 EUR"
    assert money(None, "USD") == "-"


def test_login_form_needs_its_csrf_cookie(api_url: str, settings: Settings):
    username = make_user(settings)
    with httpx.Client(base_url=api_url, timeout=30) as client:
        answer = client.post(
            "/review/login", data={"username": username, "password": PASSWORD, "csrf_token": "x"}
        )
        assert answer.status_code == 403


def test_claim_decide_label_and_audit(api_url: str, api_key: str, settings: Settings):
    tx = alert(settings, api_url, api_key)
    with logged_in(api_url, settings) as alice, logged_in(api_url, settings) as bob:
        page = alice.get(f"/review/cases/{tx}")
        assert page.status_code == 200 and "Claim this case" in page.text
        # amounts thousands separated, as the reasons write them
        assert "15,000.00 USD" in page.text
        # a payment without a terminal: the terminal panel is titled without an id
        assert "<h2>Terminal: confirmed fraud, last 30 days</h2>" in page.text
        token = csrf_of(page.text)
        claimed = alice.post(f"/review/cases/{tx}/claim", data={"csrf_token": token})
        assert claimed.status_code == 303
        page = alice.get(claimed.headers["location"])
        assert "Record decision" in page.text

        # Bob can neither claim nor decide Alice's case; nothing is written
        bob_token = page_csrf(bob)
        refused = bob.post(f"/review/cases/{tx}/claim", data={"csrf_token": bob_token})
        assert refused.status_code == 409 and "claimed by someone else" in refused.text
        refused = bob.post(
            f"/review/cases/{tx}/decide",
            data={"csrf_token": bob_token, "decision": "legitimate", "version": "1"},
        )
        assert refused.status_code == 409 and "claimed by someone else" in refused.text
        assert label_of(settings, tx) is None

        # no CSRF token: 403 before anything happens
        forged = alice.post(
            f"/review/cases/{tx}/decide", data={"decision": "confirm_fraud", "version": "1"}
        )
        assert forged.status_code == 403
        assert label_of(settings, tx) is None

        note = "<script>alert(1)</script> card stolen"
        decided = alice.post(
            f"/review/cases/{tx}/decide",
            data={"csrf_token": token, "decision": "confirm_fraud", "version": "1", "note": note},
        )
        assert decided.status_code == 303
        assert "consistent_after=" in decided.headers["location"]
        page = alice.get(decided.headers["location"])
        assert "confirm fraud" in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        assert "<script>alert(1)" not in page.text

        # the stale form (version 1) is refused now that the case is decided
        stale = alice.post(
            f"/review/cases/{tx}/decide",
            data={"csrf_token": token, "decision": "legitimate", "version": "1"},
        )
        assert stale.status_code == 409 and "decided meanwhile" in stale.text

    username_source = label_of(settings, tx)
    assert username_source is not None and username_source[0] == 1
    assert username_source[1].startswith("analyst:")
    actions = [row[1] for row in audit_rows(settings, f"case:{tx}")]
    assert actions == ["claim", "decision"]
    label_rows = audit_rows(settings, f"transaction:{tx}")
    assert [row[1] for row in label_rows] == ["label"] and '"is_fraud": true' in label_rows[0][3]


def test_four_eyes_on_clearing_a_high_score(api_url: str, api_key: str, settings: Settings):
    tx = alert(settings, api_url, api_key, score="0.9700")
    with logged_in(api_url, settings) as alice, logged_in(api_url, settings) as bob:
        token = page_csrf(alice, f"/review/cases/{tx}")
        alice.post(f"/review/cases/{tx}/claim", data={"csrf_token": token})
        answer = alice.post(
            f"/review/cases/{tx}/decide",
            data={"csrf_token": token, "decision": "legitimate", "version": "1"},
        )
        assert answer.status_code == 303
        assert "second person" in alice.get(answer.headers["location"]).text
        assert label_of(settings, tx) is None

        approvals = alice.get("/review/approvals").text
        approval_id = int(
            approvals.split(f'href="/review/cases/{tx}"')[0].rsplit("<td>", 3)[1].split("<")[0]
        )
        own = alice.post(f"/review/approvals/{approval_id}/approve", data={"csrf_token": token})
        assert own.status_code == 409 and "second person" in own.text
        assert label_of(settings, tx) is None

        bob_token = page_csrf(bob, "/review/approvals")
        done = bob.post(f"/review/approvals/{approval_id}/approve", data={"csrf_token": bob_token})
        assert done.status_code == 303
    assert label_of(settings, tx)[0] == 0
    actions = [row[1] for row in audit_rows(settings, f"approval:{approval_id}")]
    assert actions == ["approval_requested", "approve"]


def test_roles_admin_pages_and_key_management(api_url: str, settings: Settings):
    with logged_in(api_url, settings) as analyst:
        for path in ("/review/admin/audit", "/review/admin/users", "/review/admin/keys"):
            assert analyst.get(path).status_code == 403
        token = page_csrf(analyst)
        refused = analyst.post(
            "/review/admin/keys",
            data={"csrf_token": token, "name": "by-analyst", "scopes": "transactions:read"},
        )
        assert refused.status_code == 403
    with logged_in(api_url, settings, role="admin") as admin:
        token = page_csrf(admin, "/review/admin/keys")
        name = f"web-key-{datetime.now(UTC):%H%M%S%f}"
        created = admin.post(
            "/review/admin/keys",
            # a browser sends the empty merchant field: a key for every merchant
            data={
                "csrf_token": token,
                "name": name,
                "scopes": ["transactions:read"],
                "merchant_id": "",
            },
        )
        assert created.status_code == 200 and 'id="new-key"' in created.text
        limited = admin.post(
            "/review/admin/keys",
            data={
                "csrf_token": token,
                "name": f"{name}-m",
                "scopes": ["transactions:read"],
                "merchant_id": "4242",
            },
        )
        assert limited.status_code == 200 and f"<td>{name}-m</td>" in limited.text
        row = limited.text.split(f"<td>{name}-m</td>")[1].split("</tr>")[0]
        assert "<td>4242</td>" in row, row
        plain = created.text.split('id="new-key">')[1].split("<")[0]
        prefix = plain.split("_")[1]
        assert httpx.get(f"{api_url}/transactions/1", headers={"X-API-Key": plain}).status_code in (
            200,
            404,
        )
        revoked = admin.post(f"/review/admin/keys/{prefix}/revoke", data={"csrf_token": token})
        assert revoked.status_code == 200 and f"revoked {name}" in revoked.text
        audit_page = admin.get("/review/admin/audit", params={"target": f"apikey:{prefix}"})
        assert audit_page.status_code == 200
        assert "key_create" in audit_page.text and "key_revoke" in audit_page.text


def test_queue_pages_by_keyset_and_filters(api_url: str, api_key: str, settings: Settings):
    day = fresh_day()
    occurred = day_start(day) + timedelta(hours=9)
    ids = []
    for i in range(7):
        tx = post_transaction(api_url, api_key, amount="15000.00", occurred_at=occurred)
        store_verdict(
            settings, tx, score=f"0.{60 + i}", occurred_at=occurred + timedelta(minutes=i)
        )
        ids.append(tx)
    with logged_in(api_url, settings) as client:
        seen: list[int] = []
        url = f"/review/queue?status=all&day={day}&order=score"
        page = client.get(url, headers={"HX-Request": "true"})
        while True:
            assert page.status_code == 200, page.text
            seen += [
                int(part.split('"')[0]) for part in page.text.split('href="/review/cases/')[1:]
            ]
            if "after=" not in page.text:
                break
            after = page.text.split("after=")[1].split('"')[0]
            page = client.get(f"{url}&after={after}", headers={"HX-Request": "true"})
        assert seen == list(reversed(ids))  # highest score first, each once
        assert client.get("/review/queue?after=garbage").status_code == 422
        assert client.get("/review/queue?status=bogus").status_code == 422


def test_queue_and_api_filter_real_time_and_nightly_alerts(
    api_url: str, api_key: str, settings: Settings
):
    day = fresh_day()
    occurred = day_start(day) + timedelta(hours=11)
    by_source: dict[str, int] = {}
    for source in ("realtime", "nightly"):
        tx = post_transaction(api_url, api_key, amount="15000.00", occurred_at=occurred)
        store_verdict(settings, tx, score="0.8", occurred_at=occurred, source=source)
        by_source[source] = tx
    with logged_in(api_url, settings) as client:
        for source, tx in by_source.items():
            page = client.get(f"/review/queue?status=all&day={day}&source={source}")
            assert page.status_code == 200, page.text
            shown = {int(p.split('"')[0]) for p in page.text.split('href="/review/cases/')[1:]}
            assert shown == {tx}, (source, shown)
        both = client.get(f"/review/queue?status=all&day={day}").text
        assert "real-time" in both and "nightly" in both
        assert client.get("/review/queue?source=batch").status_code == 422
        # "next case" keeps the source filter
        token = page_csrf(client)
        answer = client.post(
            f"/review/queue/next?day={day}&source=nightly", data={"csrf_token": token}
        )
        assert answer.status_code == 303
        assert answer.headers["location"].startswith(f"/review/cases/{by_source['nightly']}?")

    headers = {"X-API-Key": api_key}
    for source, tx in by_source.items():
        answer = httpx.get(
            f"{api_url}/alerts", params={"source": source, "limit": 1000}, headers=headers
        )
        assert answer.status_code == 200, answer.text
        data = answer.json()["data"]
        assert {row["source"] for row in data} == {source}
        ids = {row["transaction_id"] for row in data}
        assert tx in ids and not (set(by_source.values()) - {tx}) & ids
    refused = httpx.get(f"{api_url}/alerts", params={"source": "batch"}, headers=headers)
    assert refused.status_code == 422 and "source" in refused.text


def test_cli_user_create_and_list(cluster, settings: Settings, api_url: str):
    from typer.testing import CliRunner

    from ledgerguard.cli.main import app
    from tests.support import settings_env

    env = {**settings_env(settings), "LG_TEST_PASSWORD": PASSWORD}
    name = f"cli_{datetime.now(UTC):%H%M%S%f}"
    args = ["user", "create", name, "--role", "admin", "--password-env", "LG_TEST_PASSWORD"]
    created = CliRunner().invoke(app, args, env=env)
    assert created.exit_code == 0, created.output
    again = CliRunner().invoke(app, args, env=env)
    assert again.exit_code == 1 and "already exists" in again.output
    short = CliRunner().invoke(
        app, ["user", "create", f"{name}x", "--password-env", "SHORT"], env={**env, "SHORT": "abc"}
    )
    assert short.exit_code == 1 and "at least 12 characters" in short.output
    listed = CliRunner().invoke(app, ["user", "list", "--json"], env=env)
    assert any(u["username"] == name and u["role"] == "admin" for u in json.loads(listed.stdout))
    with httpx.Client(base_url=api_url, timeout=30) as client:
        assert login(client, name).status_code == 303
        assert client.get("/review/admin/users").status_code == 200


def test_bench_review_queue_smoke(cluster, settings: Settings):
    from typer.testing import CliRunner

    from ledgerguard.cli.main import app
    from tests.support import settings_env

    args = ["bench", "review-queue", "--alerts", "1000", "--repeats", "2", "--remove"]
    result = CliRunner().invoke(app, args, env=settings_env(settings))
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["alerts"] >= 1000
    assert figures["pages"]["score_deep_page"]["rows"] == 50
    with api_conn(settings) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM fraud_scores WHERE transaction_id >= 9000000000000")
        assert cur.fetchone()[0] == 0  # --remove


def test_login_attempts_per_address_are_rate_limited(cluster, settings: Settings):
    from fastapi.testclient import TestClient

    from ledgerguard.api.main import create_app

    app = create_app(settings.model_copy(update={"web_login_attempts_per_minute": 2}), workers=1)
    with TestClient(app) as client:
        answers = []
        for i in range(3):
            token = csrf_of(client.get("/review/login").text)
            answers.append(
                client.post(
                    "/review/login",
                    data={"username": f"nobody{i}", "password": "x", "csrf_token": token},
                    follow_redirects=False,
                )
            )
    assert [a.status_code for a in answers] == [401, 401, 429]
    assert int(answers[2].headers["retry-after"]) > 0
