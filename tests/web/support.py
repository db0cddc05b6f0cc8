"""Helpers of the web app's tests: accounts, logged-in clients, alerts made the real way."""

from __future__ import annotations

import contextlib
import itertools
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import httpx
import sqlalchemy as sa

from ledgerguard.db.engines import migration_engine
from ledgerguard.db.fraud_results import UPSERT_REALTIME_VERDICTS, UPSERT_SCORES
from ledgerguard.db.tables import fraud_parameter_sets
from ledgerguard.db.web_users import create_user
from ledgerguard.settings import Settings
from ledgerguard.web.passwords import hash_password

PASSWORD = "correct horse battery staple"
_names = itertools.count(1)
_tx_users = itertools.count(70_000_000)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_user(settings: Settings, role: str = "analyst", password: str = PASSWORD) -> str:
    """A fresh account; returns its username."""
    username = f"{role}{next(_names)}_{datetime.now(UTC):%H%M%S%f}"
    engine = migration_engine(settings)
    try:
        with engine.begin() as conn:
            create_user(
                conn,
                username=username,
                password_hash=hash_password(password),
                role=role,
                now=datetime.now(UTC),
            )
    finally:
        engine.dispose()
    return username


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, html[:2000]
    return match.group(1)


def login(client: httpx.Client, username: str, password: str = PASSWORD) -> httpx.Response:
    form = client.get("/review/login")
    return client.post(
        "/review/login",
        data={"username": username, "password": password, "csrf_token": csrf_of(form.text)},
    )


@contextlib.contextmanager
def logged_in(api_url: str, settings: Settings, role: str = "analyst") -> Iterator[httpx.Client]:
    """A client with the session of a new account of `role`."""
    with httpx.Client(base_url=api_url, timeout=30) as client:
        answer = login(client, make_user(settings, role))
        assert answer.status_code == 303, answer.text
        yield client


def page_csrf(client: httpx.Client, path: str = "/review/queue") -> str:
    return csrf_of(client.get(path).text)


def post_transaction(
    api_url: str, api_key: str, *, amount: str, occurred_at: datetime, **extra: object
) -> int:
    """A transaction through the API (as a client would)."""
    body = {
        "user_id": next(_tx_users),
        "amount": amount,
        "currency": "USD",
        "occurred_at": occurred_at.isoformat(),
        **extra,
    }
    answer = httpx.post(
        f"{api_url}/transactions", json=body, headers={"X-API-Key": api_key}, timeout=30
    )
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def store_verdict(
    settings: Settings,
    transaction_id: int,
    *,
    score: str,
    occurred_at: datetime,
    rule_ids: str = "large_amount",
    reasons: str = "amount above the CTR line",
    user_id: int = 1,
    source: str = "nightly",
) -> None:
    """A flagged verdict as the scorers store it (for tests about the queue, not the engine);
    `source="realtime"` writes the streaming scorer's own `realtime_verdicts` row too."""
    engine = migration_engine(settings)
    day = occurred_at.replace(hour=0, minute=0, second=0, microsecond=0)
    try:
        with engine.begin() as conn:
            conn.execute(
                UPSERT_SCORES,
                [
                    {
                        "transaction_id": transaction_id,
                        "user_id": user_id,
                        "occurred_at": occurred_at,
                        "amount": Decimal("15000"),
                        "currency": "USD",
                        "amount_usd": Decimal("15000"),
                        "score": Decimal(score),
                        "flagged": True,
                        "rule_ids": rule_ids,
                        "reasons": reasons,
                        "interval_start": day,
                        "interval_end": day + timedelta(days=1),
                        "analysed_at": datetime.now(UTC),
                        "source": source,
                    }
                ],
            )
            if source == "realtime":
                now = datetime.now(UTC)
                conn.execute(
                    UPSERT_REALTIME_VERDICTS,
                    [
                        {
                            "transaction_id": transaction_id,
                            "score": Decimal(score),
                            "flagged": True,
                            "rule_ids": rule_ids,
                            "reasons": reasons,
                            "model_version": None,
                            "scored_at": now,
                            "first_scored_at": now,
                        }
                    ],
                )
    finally:
        engine.dispose()


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def insert_approved_set(settings: Settings, parameters: str) -> int:
    """An approved parameter set written straight to the table (`parameters`: its JSON), as if
    two administrators had agreed on it; returns its version."""
    engine = migration_engine(settings)
    now = datetime.now(UTC)
    try:
        with engine.begin() as conn:
            result = conn.execute(
                sa.insert(fraud_parameter_sets).values(
                    parameters=parameters,
                    status="approved",
                    proposed_by=1,
                    proposed_at=now,
                    decided_by=2,
                    decided_at=now,
                )
            )
            return int(result.inserted_primary_key[0])
    finally:
        engine.dispose()


def reset_parameter_sets(settings: Settings) -> None:
    """Back to the settings' parameters: other tests' analyses must not run with a test's set."""
    engine = migration_engine(settings)
    try:
        with engine.begin() as conn:
            conn.execute(sa.delete(fraud_parameter_sets))
    finally:
        engine.dispose()
