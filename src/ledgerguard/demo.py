"""The end-to-end demonstration run by `make demo` / `ledgerguard demo`: the original design's
"Testing the Pipeline" scenario, automated.

Each step uses the same code as the platform itself and reports what it did, so the demo doubles
as a smoke test of a fresh installation:

1. the cluster comes up (created, provisioned, replicating, migrated), then the API and, unless
   switched off, Prometheus with both exporters and Airflow (`ledgerguard.platform`);
2. a demo API key is created once and kept in `<state dir>/demo-api-key` (mode 0600);
3. the original design's example `{"user_id": 999, "amount": 15000.00, "currency": "USD"}` is
   POSTed with the key, and read back from the replica with its `consistent_after` token;
4. `02_fraud_analysis_etl` is triggered for today through Airflow's REST API; when it succeeded,
   the report line of that transaction (`<id>,999,15000.00,USD,FLAGGED_FRAUD`) is shown.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from ledgerguard.db.api_keys import create_api_key, find_api_key_sync
from ledgerguard.db.engines import migration_engine
from ledgerguard.errors import LedgerGuardError
from ledgerguard.files import write_private
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
    report_line: str | None = None


def demo_api_key(settings: Settings) -> str:
    """The demo's key: reused while it is still active, else created (and saved 0600)."""
    path = settings.state_dir / "demo-api-key"
    engine = migration_engine(settings)
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
    write_private(path, plain + "\n")
    return plain


DEMO_ANALYST = "demo-analyst"


def demo_analyst(settings: Settings) -> tuple[str, str]:
    """The demo's analyst account of the web app and its password (saved 0600, reused)."""
    from ledgerguard.db.web_users import create_user, find_user
    from ledgerguard.web.passwords import hash_password, verify_password

    path = settings.state_dir / "demo-analyst-password"
    engine = migration_engine(settings)
    try:
        with engine.begin() as conn:
            user = find_user(conn, username=DEMO_ANALYST)
            saved = path.read_text().strip() if path.exists() else None
            if user is not None and saved and verify_password(user.password_hash, saved):
                return DEMO_ANALYST, saved
            if user is not None:
                raise DemoError(
                    f"a user {DEMO_ANALYST!r} exists but {path} does not hold its password"
                )
            password = secrets.token_urlsafe(12)
            create_user(
                conn,
                username=DEMO_ANALYST,
                password_hash=hash_password(password),
                role="analyst",
                now=datetime.now(UTC),
            )
    finally:
        engine.dispose()
    path.write_text(password + "\n")
    path.chmod(0o600)
    return DEMO_ANALYST, password


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


def run_demo(
    settings: Settings,
    *,
    say: Callable[[str], None],
    with_monitoring: bool = True,
    with_airflow: bool = True,
) -> DemoResult:
    from ledgerguard.platform import platform_up

    platform_up(settings, with_monitoring=with_monitoring, with_airflow=with_airflow, progress=say)
    key = demo_api_key(settings)
    api_url = f"http://{settings.api_host}:{settings.api_port}"
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
    analyst, password = demo_analyst(settings)
    say(
        f"analyst review app: {api_url}/review (login {analyst} / {password}); API docs: {api_url}/docs"
    )
    result = DemoResult(api_url, key, created, read_back, source)
    if with_airflow:
        result.report_line = run_fraud_dag(settings, created, say=say)
    return result


def run_fraud_dag(
    settings: Settings, created: dict[str, Any], *, say: Callable[[str], None]
) -> str:
    """Trigger `02_fraud_analysis_etl` for today, wait, and return the example's report line."""
    from datetime import UTC, datetime

    from ledgerguard.orchestration.client import local_client
    from ledgerguard.orchestration.runs import run_day

    today = datetime.now(UTC).date()
    with local_client(settings) as client:
        outcome = run_day(client, "02_fraud_analysis_etl", day=today, timeout=600, progress=say)
    if not outcome.succeeded:
        raise DemoError(
            f"02_fraud_analysis_etl ended {outcome.state} (tasks: {outcome.tasks}); see the "
            f"task logs under {settings.state_dir / 'airflow'}"
        )
    report = settings.reports_dir / f"fraud_report_{today.isoformat()}.csv"
    expected = f"{created['id']},{created['user_id']},{created['amount']},{created['currency']},FLAGGED_FRAUD"
    lines = report.read_text().splitlines() if report.exists() else []
    if expected not in lines:
        raise DemoError(f"{report} does not list the example transaction ({expected!r})")
    say(f"02_fraud_analysis_etl succeeded; {report}:")
    say(f"  {lines[0]}")
    say(f"  {expected}")
    return expected
