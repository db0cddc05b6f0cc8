"""Keys limited to one merchant (`apikey create --merchant`): writes and reads outside it → 403.

In-process apps on the real cluster; the limited key is made through the CLI, as an operator
would.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import sqlalchemy as sa
from typer.testing import CliRunner

from ledgerguard.cli.main import app as cli
from ledgerguard.cluster.local import LocalCluster
from ledgerguard.db.engines import migration_engine
from ledgerguard.db.tables import fraud_scores
from ledgerguard.settings import Settings
from tests.support import make_key, settings_env, with_app

runner = CliRunner()
SCOPES = ["--scope", "transactions:read", "--scope", "transactions:write", "--scope", "admin"]


def _limited_key(settings: Settings, merchant: int) -> dict[str, Any]:
    result = runner.invoke(
        cli,
        [
            "apikey",
            "create",
            f"merchant-{uuid.uuid4().hex[:8]}",
            *SCOPES,
            "--merchant",
            str(merchant),
            "--json",
        ],
        env=settings_env(settings),
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _flag(settings: Settings, transaction_ids: list[int]) -> None:
    """Flagged verdicts for the given transactions, as a scorer would write them."""
    now = datetime.now(UTC)
    engine = migration_engine(settings)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.insert(fraud_scores),
                [
                    {
                        "transaction_id": tid,
                        "user_id": 1,
                        "occurred_at": now,
                        "amount": "10.00",
                        "currency": "USD",
                        "score": "0.9000",
                        "flagged": True,
                        "rule_ids": "large_amount",
                        "reasons": "test",
                        "interval_start": now,
                        "interval_end": now,
                        "analysed_at": now,
                    }
                    for tid in transaction_ids
                ],
            )
    finally:
        engine.dispose()


def test_apikey_create_merchant_is_listed(healthy_cluster: LocalCluster, settings: Settings):
    created = _limited_key(settings, 41)
    assert created["merchant_id"] == 41
    listed = runner.invoke(cli, ["apikey", "list", "--json"], env=settings_env(settings))
    assert listed.exit_code == 0, listed.output
    (row,) = [k for k in json.loads(listed.stdout) if k["name"] == created["name"]]
    assert row["merchant_id"] == 41
    bad = runner.invoke(
        cli, ["apikey", "create", "zero", "--merchant", "0"], env=settings_env(settings)
    )
    assert bad.exit_code != 0 and "--merchant" in bad.output


def test_a_merchant_key_stays_within_its_merchant(
    healthy_cluster: LocalCluster, settings: Settings
):
    mine, theirs = 7001, 7002
    limited = _limited_key(settings, mine)["key"]
    full = make_key(settings, f"full-{uuid.uuid4().hex[:8]}", ("admin",))

    async def scenario(client: httpx.AsyncClient, services: Any) -> dict[str, Any]:
        as_limited = {"X-API-Key": limited}
        as_full = {"X-API-Key": full}
        body = {"user_id": 5, "amount": "12.50", "currency": "USD"}
        out: dict[str, Any] = {}
        # the key cache carries the merchant
        record = await services.keys.get(limited.split("_")[1])
        out["cached_merchant"] = record.merchant_id
        out["other"] = await client.post(
            "/transactions", json={**body, "merchant_id": theirs}, headers=as_limited
        )
        own = await client.post(
            "/transactions", json={**body, "merchant_id": mine}, headers=as_limited
        )
        filled = await client.post("/transactions", json=body, headers=as_limited)
        foreign = await client.post(
            "/transactions", json={**body, "merchant_id": theirs}, headers=as_full
        )
        out["own"], out["filled"], out["foreign"] = own, filled, foreign
        token = foreign.json()["consistent_after"]
        ids = [own.json()["id"], filled.json()["id"], foreign.json()["id"]]
        out["ids"] = ids
        params = {"consistent_after": token}
        out["read_own"] = await client.get(
            f"/transactions/{ids[0]}", params=params, headers=as_limited
        )
        out["read_foreign"] = await client.get(
            f"/transactions/{ids[2]}", params=params, headers=as_limited
        )
        out["read_foreign_full"] = await client.get(
            f"/transactions/{ids[2]}", params=params, headers=as_full
        )
        out["label_foreign"] = await client.post(
            f"/transactions/{ids[2]}/label", json={"is_fraud": True}, headers=as_limited
        )
        out["label_own"] = await client.post(
            f"/transactions/{ids[0]}/label", json={"is_fraud": True}, headers=as_limited
        )
        labelled = await client.post(
            f"/transactions/{ids[2]}/label", json={"is_fraud": False}, headers=as_full
        )
        assert labelled.status_code == 200, labelled.text
        _flag(settings, ids)
        await asyncio.to_thread(healthy_cluster.wait_for_replica, timeout=30)
        out["read_label_foreign"] = await client.get(
            f"/transactions/{ids[2]}/label", headers=as_limited
        )
        out["read_label_own"] = await client.get(
            f"/transactions/{ids[0]}/label", headers=as_limited
        )
        out["list"] = await client.get(
            "/transactions", params={"user_id": 5, "limit": 1000}, headers=as_limited
        )
        out["alerts"] = await client.get("/alerts", params={"limit": 1000}, headers=as_limited)
        out["alerts_full"] = await client.get("/alerts", params={"limit": 1000}, headers=as_full)
        return out

    out = asyncio.run(with_app(settings, scenario))
    own_id, filled_id, foreign_id = out["ids"]
    assert out["cached_merchant"] == mine
    assert out["other"].status_code == 403, out["other"].text
    assert out["other"].json()["detail"] == (
        f"this API key is limited to merchant {mine}; merchant_id {theirs} is outside it"
    )
    assert out["own"].status_code == 201 and out["own"].json()["merchant_id"] == mine
    assert out["filled"].status_code == 201 and out["filled"].json()["merchant_id"] == mine
    assert out["foreign"].status_code == 201, out["foreign"].text
    assert out["read_own"].status_code == 200
    assert out["read_foreign"].status_code == 403
    assert f"transaction {foreign_id} is outside it" in out["read_foreign"].json()["detail"]
    assert out["read_foreign_full"].status_code == 200
    assert out["label_foreign"].status_code == 403
    assert out["label_own"].status_code == 200, out["label_own"].text
    assert out["read_label_foreign"].status_code == 403
    assert out["read_label_own"].status_code == 200
    listed = {row["id"] for row in out["list"].json()["data"]}
    assert {own_id, filled_id} <= listed and foreign_id not in listed
    alerted = {a["transaction_id"] for a in out["alerts"].json()["data"]}
    assert {own_id, filled_id} <= alerted and foreign_id not in alerted
    assert foreign_id in {a["transaction_id"] for a in out["alerts_full"].json()["data"]}
