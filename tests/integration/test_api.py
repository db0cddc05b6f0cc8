"""The transaction API, served by Gunicorn/Uvicorn, against the real primary and replica."""

from __future__ import annotations

import asyncio
import itertools
import json
import time

import httpx
import pytest

from ledgerguard.cluster.admin import admin_connection, run
from ledgerguard.cluster.local import LocalCluster
from ledgerguard.db.dialect import Statement
from ledgerguard.settings import Settings
from tests.support import analytics_conn, api_conn, make_key

_user_ids = itertools.count(50_000_000)


def next_user() -> int:
    return next(_user_ids)


def rows_for(settings: Settings, user_id: int) -> int:
    with api_conn(settings) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM transactions WHERE user_id = %s", (user_id,))
        return cur.fetchone()[0]


@pytest.fixture
def client(api_url: str, api_key: str) -> httpx.Client:
    with httpx.Client(base_url=api_url, headers={"X-API-Key": api_key}, timeout=30) as c:
        yield c


def test_original_example_round_trip(client: httpx.Client):
    user = next_user()
    created = client.post(
        "/transactions", json={"user_id": user, "amount": 15000.00, "currency": "USD"}
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["amount"] == "15000.00" and body["amount_usd"] == "15000.00"
    assert body["currency"] == "USD" and body["user_id"] == user and body["status"] == "ACCEPTED"
    assert body["consistent_after"]
    read = client.get(
        f"/transactions/{body['id']}", params={"consistent_after": body["consistent_after"]}
    )
    assert read.status_code == 200, read.text
    assert read.headers["x-read-source"] == "replica"
    stored = read.json()
    assert stored.pop("risk") is None  # no scorer runs here (tests/integration/test_realtime.py)
    assert {k: v for k, v in body.items() if k != "consistent_after"} == stored


def test_optional_fields_and_fx(client: httpx.Client):
    user = next_user()
    created = client.post(
        "/transactions",
        json={
            "user_id": user,
            "amount": "9000",
            "currency": "EUR",
            "external_id": f"ext-{user}",
            "terminal_id": 7,
            "merchant_id": 8,
            "occurred_at": "2024-03-15T10:00:00+01:00",
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["amount"] == "9000.00"
    assert body["occurred_at"].startswith("2024-03-15T09:00:00")
    assert float(body["amount_usd"]) > 9000  # EUR was above USD in March 2024
    again = client.post(
        "/transactions",
        json={"user_id": user, "amount": "1", "currency": "EUR", "external_id": f"ext-{user}"},
    )
    assert again.status_code == 409 and "external_id" in again.json()["detail"]


@pytest.mark.parametrize(
    ("payload", "field", "rule"),
    [
        ({"amount": -5}, "amount", "greater than 0"),
        ({"amount": 0}, "amount", "greater than 0"),
        ({"amount": "1.234"}, "amount", "USD allows at most 2"),
        ({"amount": "1.5", "currency": "JPY"}, "amount", "JPY allows at most 0"),
        ({"amount": "Infinity"}, "amount", "plain positive decimal"),
        ({"amount": "NaN"}, "amount", "plain positive decimal"),
        ({"amount": "1e13"}, "amount", "plain positive decimal"),
        ({"amount": 1e13}, "amount", "must not exceed"),
        ({"currency": "ZZZ"}, "currency", "ISO 4217"),
        ({"currency": "XAU"}, "currency", "ISO 4217"),
        ({"currency": "usd"}, "currency", "pattern"),
        ({"user_id": "abc"}, "user_id", "integer"),
        ({"user_id": -1}, "user_id", "greater than 0"),
        ({"colour": "red"}, "colour", "Extra inputs"),
        ({"occurred_at": "2999-01-01T00:00:00Z"}, "occurred_at", "future"),
        ({"occurred_at": "yesterday"}, "occurred_at", "datetime"),
    ],
)
def test_bad_input_is_a_4xx_naming_field_and_rule(
    client: httpx.Client, settings: Settings, payload: dict, field: str, rule: str
):
    user = next_user()
    body = {"user_id": user, "amount": "10.00", "currency": "USD"} | payload
    response = client.post("/transactions", json=body)
    # a valid date-time out of range is a refusal (400): the document cannot state the range
    expected = 400 if rule == "future" else 422
    assert response.status_code == expected, response.text
    message = response.json()["message"]
    assert field in message and rule.lower() in message.lower(), message
    assert rows_for(settings, user) == 0


@pytest.mark.parametrize(
    "raw",
    [
        b'{"user_id": 1, "amount": NaN, "currency": "USD"}',
        b'{"user_id": 1, "amount": Infinity, "currency": "USD"}',
        b'{"user_id": 1, "amount": ',
        b"[]",
        b"",
    ],
)
def test_malformed_bodies_are_4xx(client: httpx.Client, raw: bytes):
    response = client.post(
        "/transactions", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text


def test_oversize_body_is_413(client: httpx.Client, settings: Settings):
    user = next_user()
    body = json.dumps({"user_id": user, "amount": "1", "currency": "USD", "x": "a" * 20_000})
    response = client.post(
        "/transactions", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert rows_for(settings, user) == 0


def test_missing_unknown_and_revoked_keys_are_401(api_url: str, settings: Settings):
    payload = {"user_id": next_user(), "amount": "1", "currency": "USD"}
    assert httpx.post(f"{api_url}/transactions", json=payload).status_code == 401
    for bad in ("nonsense", "lg_000000000000_" + "x" * 43):
        response = httpx.post(f"{api_url}/transactions", json=payload, headers={"X-API-Key": bad})
        assert response.status_code == 401, response.text
    from ledgerguard.db.api_keys import revoke_api_key
    from ledgerguard.db.engines import migration_engine

    key = make_key(settings, "to-revoke", ("transactions:write",))
    engine = migration_engine(settings)
    with engine.begin() as conn:
        revoke_api_key(conn, name_or_prefix="to-revoke")
    engine.dispose()
    response = httpx.post(f"{api_url}/transactions", json=payload, headers={"X-API-Key": key})
    assert response.status_code == 401 and "revoked" in response.json()["detail"]


def test_wrong_scope_is_403(api_url: str, settings: Settings):
    reader = make_key(settings, "reader-only", ("transactions:read",))
    writer = make_key(settings, "writer-only", ("transactions:write",))
    payload = {"user_id": next_user(), "amount": "1", "currency": "USD"}
    response = httpx.post(f"{api_url}/transactions", json=payload, headers={"X-API-Key": reader})
    assert response.status_code == 403 and "transactions:write" in response.json()["detail"]
    response = httpx.get(f"{api_url}/transactions/1", headers={"X-API-Key": writer})
    assert response.status_code == 403


def test_health_ready_and_metrics_need_no_key(client: httpx.Client, api_url: str):
    assert httpx.get(f"{api_url}/health").json() == {"status": "ok"}
    ready = httpx.get(f"{api_url}/ready").json()
    assert ready["primary"] and ready["replica"] and ready["replica_gtid_gap"] is not None
    client.post("/transactions", json={"user_id": next_user(), "amount": "2", "currency": "USD"})
    text = httpx.get(f"{api_url}/metrics").text
    assert (
        'ledgerguard_http_requests_total{method="POST",route="/transactions",status="201"}' in text
    )
    assert "ledgerguard_http_request_duration_seconds_bucket" in text
    assert "ledgerguard_transactions_committed_total" in text
    assert 'ledgerguard_db_pool_connections_in_use{server="primary"}' in text


def test_metrics_count_every_worker(client: httpx.Client, api_url: str):
    """Posts land on both workers; the counter seen by any scrape includes them all."""

    def committed() -> float:
        for line in httpx.get(f"{api_url}/metrics").text.splitlines():
            if line.startswith("ledgerguard_transactions_committed_total "):
                return float(line.split()[1])
        return 0.0

    before = committed()
    for _ in range(40):
        r = client.post(
            "/transactions", json={"user_id": next_user(), "amount": "3", "currency": "USD"}
        )
        assert r.status_code == 201
    assert committed() - before == 40


async def _race(api_url: str, key: str, body: dict, idem: str, n: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=n)
    async with httpx.AsyncClient(base_url=api_url, timeout=30, limits=limits) as c:
        headers = {"X-API-Key": key, "Idempotency-Key": idem}
        return await asyncio.gather(
            *(c.post("/transactions", json=body, headers=headers) for _ in range(n))
        )


def test_idempotency_race_creates_one_row(api_url: str, api_key: str, settings: Settings):
    user = next_user()
    body = {"user_id": user, "amount": "77.70", "currency": "GBP"}
    responses = asyncio.run(_race(api_url, api_key, body, f"race-{user}", 50))
    assert {r.status_code for r in responses} == {201}, {r.text for r in responses}
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    assert rows_for(settings, user) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 49
    # the same key with another body is a conflict, and writes nothing
    conflict = httpx.post(
        f"{api_url}/transactions",
        json=body | {"amount": "77.71"},
        headers={"X-API-Key": api_key, "Idempotency-Key": f"race-{user}"},
    )
    assert conflict.status_code == 409
    assert rows_for(settings, user) == 1
    # keys are scoped to the API key that used them
    other = make_key(settings, f"other-{user}", ("transactions:write",))
    fresh = httpx.post(
        f"{api_url}/transactions",
        json=body,
        headers={"X-API-Key": other, "Idempotency-Key": f"race-{user}"},
    )
    assert fresh.status_code == 201 and fresh.json()["id"] not in ids
    assert rows_for(settings, user) == 2


def test_idempotent_retry_of_a_body_with_external_id_replays(
    api_url: str, api_key: str, settings: Settings
):
    """The retry meets its first row's unique external_id before the idempotency row: it must
    still replay (it was a 409 "external_id is already used"), concurrent or later."""
    user = next_user()
    body = {"user_id": user, "amount": "12.34", "currency": "EUR", "external_id": f"idem-{user}"}
    responses = asyncio.run(_race(api_url, api_key, body, f"ext-{user}", 20))
    assert {r.status_code for r in responses} == {201}, {r.text for r in responses}
    assert len({r.json()["id"] for r in responses}) == 1
    later = httpx.post(
        f"{api_url}/transactions",
        json=body,
        headers={"X-API-Key": api_key, "Idempotency-Key": f"ext-{user}"},
    )
    assert later.status_code == 201 and later.headers["idempotent-replayed"] == "true"
    assert later.json()["id"] == responses[0].json()["id"]
    # another Idempotency-Key with the same external_id: the external_id is taken
    other = httpx.post(
        f"{api_url}/transactions",
        json=body,
        headers={"X-API-Key": api_key, "Idempotency-Key": f"ext2-{user}"},
    )
    assert other.status_code == 409 and "external_id" in other.json()["detail"]
    assert rows_for(settings, user) == 1


def test_idempotency_key_out_of_bounds_is_a_422_naming_the_header(
    client: httpx.Client, settings: Settings
):
    user = next_user()
    body = {"user_id": user, "amount": "5.00", "currency": "USD"}
    for value, rule in (("", "string_too_short"), ("k" * 256, "string_too_long")):
        r = client.post("/transactions", json=body, headers={"Idempotency-Key": value})
        assert r.status_code == 422, r.text
        (error,) = r.json()["detail"]
        assert error["loc"] == ["header", "idempotency-key"] and error["type"] == rule
        assert "idempotency-key" in r.json()["message"]
    assert rows_for(settings, user) == 0
    # the longest allowed key is taken, and a missing key still refuses before the header check
    ok = client.post("/transactions", json=body, headers={"Idempotency-Key": "k" * 255})
    assert ok.status_code == 201, ok.text
    unkeyed = httpx.post(
        f"{client.base_url}/transactions", json=body, headers={"Idempotency-Key": ""}
    )
    assert unkeyed.status_code == 401


def test_keyset_pagination(client: httpx.Client, healthy_cluster: LocalCluster):
    user = next_user()
    created = []
    for i in range(25):
        r = client.post(
            "/transactions",
            json={
                "user_id": user,
                "amount": f"{i + 1}.00",
                "currency": "USD",
                "occurred_at": f"2025-01-{i + 1:02d}T12:00:00Z",
            },
        )
        created.append(r.json()["id"])
    token = r.json()["consistent_after"]
    seen, cursor, pages = [], None, 0
    while True:
        params = {"user_id": user, "limit": 10, "consistent_after": token}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/transactions", params=params).json()
        pages += 1
        seen += [row["id"] for row in page["data"]]
        assert page["count"] == len(page["data"])
        cursor = page["next"]
        if cursor is None:
            break
    assert pages == 3 and seen == created
    window = client.get(
        "/transactions",
        params={"user_id": user, "since": "2025-01-05T00:00:00Z", "until": "2025-01-08T00:00:00Z"},
    ).json()
    assert [row["amount"] for row in window["data"]] == ["5.00", "6.00", "7.00"]
    bad = client.get("/transactions", params={"cursor": "abc"})
    assert bad.status_code == 422
    inverted = client.get(
        "/transactions", params={"since": "2025-02-01T00:00:00Z", "until": "2025-01-01T00:00:00Z"}
    )
    assert inverted.status_code == 400  # each valid alone: a refusal, not a validation error
    assert client.get("/transactions", params={"until": "0.5"}).status_code == 422


def test_read_your_writes_waits_then_falls_back_to_primary(
    client: httpx.Client, healthy_cluster: LocalCluster, settings: Settings
):
    replica = healthy_cluster.specs["replica"]
    with admin_connection(replica, password=healthy_cluster.root_password) as conn:
        run(conn, Statement("STOP SLAVE SQL_THREAD"))
    try:
        created = client.post(
            "/transactions", json={"user_id": next_user(), "amount": "5", "currency": "USD"}
        ).json()
        plain = client.get(f"/transactions/{created['id']}")
        assert plain.status_code == 404  # the replica does not have it yet
        consistent = client.get(
            f"/transactions/{created['id']}",
            params={"consistent_after": created["consistent_after"]},
        )
        assert consistent.status_code == 200
        assert consistent.headers["x-read-source"] == "primary"
        bad = client.get(f"/transactions/{created['id']}", params={"consistent_after": "x'--"})
        assert bad.status_code == 422
    finally:
        with admin_connection(replica, password=healthy_cluster.root_password) as conn:
            run(conn, Statement("START SLAVE"))
    healthy_cluster.wait_for_replica(timeout=30)
    with analytics_conn(settings) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM transactions WHERE id = %s", (created["id"],))
        assert cur.fetchone()[0] == 1


def test_primary_down_is_503_and_recovers_without_restart(
    client: httpx.Client, healthy_cluster: LocalCluster, api_url: str
):
    payload = {"user_id": next_user(), "amount": "1", "currency": "USD"}
    primary = healthy_cluster.server("primary")
    primary.stop(root_password=healthy_cluster.root_password)
    try:
        for _ in range(3):  # several pooled connections, all stale
            response = client.post("/transactions", json=payload)
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"]
        ready = httpx.get(f"{api_url}/ready")
        assert ready.status_code == 503 and ready.json()["primary"] is False
    finally:
        healthy_cluster.up()
    assert client.post("/transactions", json=payload).status_code == 201
    # readiness is cached for a second per worker and its first check after the restart may
    # still meet a stale pooled connection: ready again within seconds, with no API restart
    deadline = time.monotonic() + 10
    while httpx.get(f"{api_url}/ready").status_code != 200:
        assert time.monotonic() < deadline, "/ready still 503 ten seconds after the restart"
        time.sleep(0.2)


def test_labels_need_admin_and_an_existing_transaction(
    client: httpx.Client, api_url: str, settings: Settings
):
    created = client.post(
        "/transactions", json={"user_id": next_user(), "amount": "9.99", "currency": "USD"}
    ).json()
    label = {"is_fraud": True, "source": "chargeback"}
    forbidden = client.post(f"/transactions/{created['id']}/label", json=label)
    assert forbidden.status_code == 403
    admin = make_key(settings, f"admin-{created['id']}", ("admin",))
    headers = {"X-API-Key": admin}
    missing = httpx.post(f"{api_url}/transactions/{2**52}/label", json=label, headers=headers)
    assert missing.status_code == 404
    bad = httpx.post(
        f"{api_url}/transactions/{created['id']}/label", json={"is_fraud": "yes"}, headers=headers
    )
    assert bad.status_code == 422
    stored = httpx.post(
        f"{api_url}/transactions/{created['id']}/label", json=label, headers=headers
    )
    assert stored.status_code == 200, stored.text
    assert stored.json()["is_fraud"] is True
    for moment, problem in (
        ("1998-12-31T23:59:59Z", "labelled_at must be in 1999 or later"),
        ("2999-01-01T00:00:00Z", "labelled_at must not be in the future"),
    ):
        refused = httpx.post(
            f"{api_url}/transactions/{created['id']}/label",
            json={**label, "labelled_at": moment},
            headers=headers,
        )
        assert refused.status_code == 400, refused.text
        assert refused.json()["detail"] == problem
    dated = httpx.post(
        f"{api_url}/transactions/{created['id']}/label",
        json={**label, "labelled_at": "2025-03-01T12:00:00+01:00"},
        headers=headers,
    )
    assert dated.status_code == 200, dated.text
    assert dated.json()["labelled_at"].startswith("2025-03-01T11:00:00")
    with api_conn(settings) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT is_fraud, source FROM fraud_labels WHERE transaction_id = %s", (created["id"],)
        )
        assert cur.fetchone() == (1, "chargeback")
