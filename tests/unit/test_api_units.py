"""Pure pieces of the API: rate limiter, GTID gap, API key format and scopes, request schema."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from ledgerguard.api.ratelimit import RateLimiter
from ledgerguard.api.schemas import TransactionCreate
from ledgerguard.apikeys import ApiKeyError, key_hash, new_key, parse_scopes, prefix_of
from ledgerguard.db.consistency import gtid_gap, valid_gtid
from ledgerguard.db.dialect import Flavour


def test_token_bucket_refills_and_splits_over_workers():
    limiter = RateLimiter(rate_per_second=10, workers=2)  # 5/s per worker, burst 10
    assert all(limiter.acquire(1, now=0.0) == 0 for _ in range(10))
    wait = limiter.acquire(1, now=0.0)
    assert wait == pytest.approx(0.2)
    assert limiter.acquire(2, now=0.0) == 0  # keys are independent
    assert limiter.acquire(1, now=0.2) == 0  # refilled one token
    assert RateLimiter(rate_per_second=0).acquire(1) == 0  # disabled


def test_gtid_gap():
    assert gtid_gap("0-1-100", "0-1-90") == 10
    assert gtid_gap("0-1-100,1-1-5", "0-1-100") == 5
    assert gtid_gap("0-1-100", "0-1-120") == 0
    assert gtid_gap("uuid:1-5", "uuid:1-3") is None
    assert gtid_gap(None, "0-1-1") is None


def test_gtid_tokens_are_validated():
    assert valid_gtid("0-1-42", Flavour.MARIADB)
    assert valid_gtid("0-1-42,1-2-3", Flavour.MARIADB)
    assert not valid_gtid("0-1-42'; DROP", Flavour.MARIADB)
    assert valid_gtid("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5", Flavour.MYSQL)


def test_api_key_format():
    plain, prefix = new_key()
    assert prefix_of(plain) == prefix and len(prefix) == 12
    assert key_hash(plain) != plain and len(key_hash(plain)) == 64
    assert prefix_of("nonsense") is None
    assert parse_scopes(["transactions:write", "admin", "admin"]) == ("admin", "transactions:write")
    with pytest.raises(ApiKeyError, match="unknown scope"):
        parse_scopes(["root"])


def test_schema_accepts_original_example_and_rejects_bad_money():
    tx = TransactionCreate.model_validate({"user_id": 999, "amount": 15000.00, "currency": "USD"})
    assert tx.amount == Decimal("15000") and tx.occurred_at is None
    with pytest.raises(ValidationError, match="JPY allows at most 0"):
        TransactionCreate.model_validate({"user_id": 1, "amount": "1.5", "currency": "JPY"})
    bhd = TransactionCreate.model_validate({"user_id": 1, "amount": "1.005", "currency": "BHD"})
    assert bhd.amount == Decimal("1.005")
    naive = TransactionCreate.model_validate(
        {"user_id": 1, "amount": "1", "currency": "USD", "occurred_at": "2024-01-01T00:00:00"}
    )
    assert naive.occurred_at is not None and naive.occurred_at.utcoffset().total_seconds() == 0


def test_a_mysql_token_is_compared_with_the_cached_primary_set():
    """The future-token check covers MySQL GTID sets too (it was MariaDB-only): a token inside
    the cached set passes without asking the primary; a token beyond it asks the primary for
    MySQL's executed set (no MySQL server here: a stand-in primary records what it is asked and
    answers with a set) and passes or is refused by that answer."""
    import asyncio
    from collections.abc import AsyncIterator
    from contextlib import asynccontextmanager
    from types import SimpleNamespace

    from ledgerguard.api.reads import FutureToken, check_token_not_future
    from ledgerguard.db.dialect import binlog_gtids_query

    uuid = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
    asked: list[str] = []

    class Primary:
        """Answers the position query with `uuid:1-20`, recording each statement."""

        @asynccontextmanager
        async def connect(self) -> AsyncIterator[Primary]:
            yield self

        async def exec_driver_sql(self, sql: str) -> SimpleNamespace:
            asked.append(sql)
            return SimpleNamespace(scalar=lambda: f"{uuid}:1-20")

        async def rollback(self) -> None:
            pass

    services = SimpleNamespace(
        flavour=Flavour.MYSQL,
        primary=Primary(),
        primary_position=f"{uuid}:1-10,\n{uuid[:-1]}3:1-2",
    )

    def check(token: str) -> None:
        asyncio.run(check_token_not_future(services, token))  # type: ignore[arg-type]

    check(f"{uuid}:4-7")
    check(f"{uuid[:-1]}3:2")
    assert asked == []  # both inside the cached set: no query
    check(f"{uuid}:11")  # beyond the cache: the primary is asked, and has it
    assert asked == [binlog_gtids_query(Flavour.MYSQL).sql]
    assert services.primary_position == f"{uuid}:1-20"
    with pytest.raises(FutureToken):
        check(f"{uuid}:21")  # beyond what the primary answers
    assert len(asked) == 2
