"""The end-to-end demonstration run by `make demo` / `ledgerguard demo`.

Each step uses the same code as the platform itself and reports what it did, so the demo doubles
as a smoke test of a fresh installation:

1. the cluster comes up (created, provisioned, replicating, migrated);
2. a demo API key is created once and kept in `<state dir>/demo-api-key` (mode 0600);
3. the API starts in the background (Gunicorn + Uvicorn workers);
4. the original design's example `{"user_id": 999, "amount": 15000.00, "currency": "USD"}` is
   POSTed with the key, and read back from the replica with its `consistent_after` token.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa

from ledgerguard.cluster.local import LocalCluster
from ledgerguard.db.api_keys import create_api_key, find_api_key_sync
from ledgerguard.db.engines import migration_url
from ledgerguard.errors import LedgerGuardError
from ledgerguard.settings import Settings

#: The original design's example transaction.
EXAMPLE = {"user_id": 999, "amount": 15000.00, "currency": "USD"}


class DemoError(LedgerGuardError):
    """A demo step did not give the expected answer."""


@dataclass
class DemoResult:
    api_url: str
    api_key: str
    created: dict[str, Any]
    read_back: dict[str, Any]
    read_source: str


def demo_api_key(settings: Settings) -> str:
    """The demo's key: reused while it is still active, else created (and saved 0600)."""
    path = settings.state_dir / "demo-api-key"
    engine = sa.create_engine(migration_url(settings))
    try:
        if path.exists():
            plain = path.read_text().strip()
            with engine.connect() as conn:
                record = find_api_key_sync(conn, plain=plain)
            if record is not None and record.active:
                return plain
        with engine.begin() as conn:
            name = f"demo-{os.urandom(3).hex()}"
            _, plain = create_api_key(
                conn, name=name, scopes=("admin", "transactions:read", "transactions:write")
            )
    finally:
        engine.dispose()
    path.write_text(plain + "\n")
    path.chmod(0o600)
    return plain


def post_and_read_back(api_url: str, api_key: str) -> tuple[dict, dict, str]:
    """POST the example, then GET it with `consistent_after` (served by the replica)."""
    headers = {"X-API-Key": api_key}
    with httpx.Client(base_url=api_url, headers=headers, timeout=30) as client:
        created = client.post("/transactions", json=EXAMPLE)
        if created.status_code != 201:
            raise DemoError(f"POST /transactions answered {created.status_code}: {created.text}")
        body = created.json()
        read = client.get(
            f"/transactions/{body['id']}", params={"consistent_after": body["consistent_after"]}
        )
        if read.status_code != 200:
            raise DemoError(f"GET /transactions/{body['id']} answered {read.status_code}")
        return body, read.json(), read.headers.get("x-read-source", "?")


def run_demo(settings: Settings, *, say: Callable[[str], None]) -> DemoResult:
    from ledgerguard.api.server import start_background

    cluster = LocalCluster(settings)
    cluster.up(progress=say)
    key = demo_api_key(settings)
    api_url = f"http://{settings.api_host}:{settings.api_port}"
    started = start_background(settings)
    say(f"API {'started' if started else 'already running'} at {api_url} (Swagger UI: /docs)")
    created, read_back, source = post_and_read_back(api_url, key)
    say(f"POST /transactions {EXAMPLE} → 201, id {created['id']}")
    say(
        f"GET /transactions/{created['id']} from the {source}: user_id={read_back['user_id']} "
        f"amount={read_back['amount']} {read_back['currency']} amount_usd={read_back['amount_usd']}"
    )
    say(f"your API key is in {settings.state_dir / 'demo-api-key'}; try:")
    say(
        f'  curl -s -X POST {api_url}/transactions -H "X-API-Key: $(cat '
        f"{settings.state_dir / 'demo-api-key'})\" -H 'Content-Type: application/json' "
        '-d \'{"user_id": 999, "amount": 15000.00, "currency": "USD"}\''
    )
    return DemoResult(api_url, key, created, read_back, source)
