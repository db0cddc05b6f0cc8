"""The fast path of POST /transactions answers exactly as the route does.

Each test drives two in-process apps on the session cluster, built by the same factory with the
same settings: one with the fast path (`ledgerguard.api.fastpath`), one without (every request
through FastAPI's route). The same request goes to both; refusals must be the same bytes
(status, headers, body), a 201 the same apart from what differs between two rows (id, times,
GTID). Each test also checks which requests the fast path took, so a fast path that handed
everything over (and so trivially "agreed") fails.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from ledgerguard.api.fastpath import CreateFastPath
from ledgerguard.api.main import create_app
from ledgerguard.cluster.local import LocalCluster
from ledgerguard.settings import Settings
from tests.support import make_key

_users = itertools.count(70_000_000)

#: fields of a 201 that differ between two rows written from the same request
VOLATILE = ("id", "created_at", "consistent_after")


@dataclass
class Pair:
    """The same app twice: `fast` with the fast path, `full` without it."""

    fast: httpx.AsyncClient
    full: httpx.AsyncClient
    fast_app: FastAPI
    full_app: FastAPI

    @property
    def path(self) -> CreateFastPath:
        """The fast path's middleware instance (counts what it took and handed over)."""
        layer: Any = self.fast_app.middleware_stack
        while not isinstance(layer, CreateFastPath):
            layer = layer.app
        return layer

    async def both(self, method: str, url: str, **kwargs: Any) -> tuple[httpx.Response, ...]:
        fast = await self.fast.request(method, url, **kwargs)
        full = await self.full.request(method, url, **kwargs)
        return fast, full


@asynccontextmanager
async def _pair(settings: Settings) -> AsyncIterator[Pair]:
    apps = create_app(settings, workers=1), create_app(settings, workers=1, fast_path=False)
    async with AsyncExitStack() as stack:
        clients = []
        for app in apps:
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app)
            clients.append(
                await stack.enter_async_context(
                    httpx.AsyncClient(transport=transport, base_url="http://test")
                )
            )
        yield Pair(clients[0], clients[1], apps[0], apps[1])


def _run(settings: Settings, scenario: Callable[[Pair], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with _pair(settings) as pair:
            return await scenario(pair)

    return asyncio.run(main())


def assert_same(fast: httpx.Response, full: httpx.Response, case: str = "") -> None:
    """Byte for byte: status, every header in order, body."""
    assert (fast.status_code, fast.headers.multi_items(), fast.content) == (
        full.status_code,
        full.headers.multi_items(),
        full.content,
    ), case


def assert_same_created(
    fast: httpx.Response, full: httpx.Response, *, differ: tuple[str, ...] = ()
) -> None:
    """Two 201s for the same request: same headers (names, order, type) and body but for the
    fields two rows cannot share (and the fields in `differ`)."""
    assert fast.status_code == full.status_code == 201, (fast.text, full.text)
    names = [name for name, _ in fast.headers.multi_items()]
    assert names == [name for name, _ in full.headers.multi_items()]
    assert fast.headers["content-type"] == full.headers["content-type"] == "application/json"
    assert int(fast.headers["content-length"]) == len(fast.content)
    assert fast.headers.get("idempotent-replayed") == full.headers.get("idempotent-replayed")
    first, second = fast.json(), full.json()
    assert list(first) == list(second)  # same fields in the same order
    for answer in (first, second):
        if answer["occurred_at"] == answer["created_at"]:  # none in the body: now
            answer["occurred_at"] = "created_at"
        for name in (*VOLATILE, *differ):
            assert answer.pop(name)
    assert first == second


def _body(**fields: Any) -> dict[str, Any]:
    return {"user_id": next(_users), "amount": "12.50", "currency": "USD", **fields}


def test_valid_requests_take_the_fast_path_and_answer_as_the_route(
    healthy_cluster: LocalCluster, settings: Settings, api_key: str
):
    limited = make_key(
        settings, f"fp-merchant-{uuid.uuid4().hex[:6]}", ("transactions:write",), merchant_id=41
    )
    headers = {"X-API-Key": api_key}

    async def scenario(pair: Pair) -> None:
        bodies = [
            _body(),
            _body(amount=15000.00),  # a JSON number, read as FastAPI reads it
            _body(amount="1200", currency="JPY"),
            _body(amount="1.234", currency="BHD"),
            _body(user_id=510509.0),  # an integral JSON number is an integer
            _body(terminal_id=7, merchant_id=3),
            _body(occurred_at="2025-01-31T10:00:00+02:00"),  # stored and answered in UTC
            _body(occurred_at="2025-01-31T10:00:00"),  # no offset: UTC
        ]
        for body in bodies:
            assert_same_created(
                *await pair.both("POST", "/transactions", json=body, headers=headers)
            )
        assert (pair.path.taken, pair.path.handed_over) == (len(bodies), 0)
        # unique external ids: one each
        tag, body = uuid.uuid4().hex[:8], _body()
        fast = await pair.fast.post(
            "/transactions", json=body | {"external_id": f"fp-{tag}"}, headers=headers
        )
        full = await pair.full.post(
            "/transactions", json=body | {"external_id": f"full-{tag}"}, headers=headers
        )
        assert fast.json()["external_id"] == f"fp-{tag}"
        assert_same_created(fast, full, differ=("external_id",))
        # a key limited to a merchant stores its merchant when the body names none
        fast, full = await pair.both(
            "POST", "/transactions", json=_body(), headers={"X-API-Key": limited}
        )
        assert fast.json()["merchant_id"] == 41
        assert_same_created(fast, full)
        assert pair.path.taken == len(bodies) + 2

    _run(settings, scenario)


def test_idempotent_requests_and_replays_answer_as_the_route(
    healthy_cluster: LocalCluster, settings: Settings, api_key: str
):
    async def scenario(pair: Pair) -> None:
        body = _body(amount="77.70", currency="GBP")
        answers = {}
        for name, client in (("fast", pair.fast), ("full", pair.full)):
            headers = {"X-API-Key": api_key, "Idempotency-Key": f"fp-{name}-{uuid.uuid4()}"}
            created = await client.post("/transactions", json=body, headers=headers)
            replayed = await client.post("/transactions", json=body, headers=headers)
            conflict = await client.post(
                "/transactions", json=body | {"amount": "77.71"}, headers=headers
            )
            answers[name] = created, replayed, conflict
        (created, replayed, conflict), (full_created, full_replayed, full_conflict) = (
            answers["fast"],
            answers["full"],
        )
        assert_same_created(created, full_created)
        assert replayed.headers["idempotent-replayed"] == "true"
        assert replayed.json() | {"consistent_after": None} == created.json() | {
            "consistent_after": None
        }
        assert_same_created(replayed, full_replayed)
        assert conflict.status_code == 409
        assert_same(conflict, full_conflict)
        assert (pair.path.taken, pair.path.handed_over) == (3, 0)

    _run(settings, scenario)


def _refusals(settings: Settings, api_key: str) -> list[tuple[str, dict[str, Any]]]:
    """Requests the route refuses, each as the keyword arguments of `httpx` `request()`."""
    read_only = make_key(settings, f"fp-ro-{uuid.uuid4().hex[:6]}", ("transactions:read",))
    keyed = {"X-API-Key": api_key}
    raw = {"X-API-Key": api_key, "Content-Type": "application/json"}
    valid = json.dumps(_body()).encode()
    now = datetime.now(UTC)
    return [
        ("invalid JSON", {"content": b'{"user_id": 1,', "headers": raw}),
        ("empty body", {"content": b"", "headers": raw}),
        ("a list", {"json": [], "headers": keyed}),
        ("null", {"content": b"null", "headers": raw}),
        ("missing field", {"json": {"user_id": 1, "amount": "5"}, "headers": keyed}),
        ("unknown field", {"json": _body(colour="red"), "headers": keyed}),
        ("too many decimals", {"json": _body(amount="1.001"), "headers": keyed}),
        ("NaN", {"content": b'{"user_id":1,"amount":NaN,"currency":"USD"}', "headers": raw}),
        ("exponent", {"json": _body(amount="1e3"), "headers": keyed}),
        ("unknown currency", {"json": _body(currency="XXY"), "headers": keyed}),
        ("string user_id", {"json": _body(user_id="12"), "headers": keyed}),
        ("invalid UTF-8", {"content": b'{"user_id":1,"currency":"\xff"}', "headers": raw}),
        ("deep nesting", {"content": b"[" * 5000 + b"]" * 5000, "headers": raw}),
        ("too large", {"content": b" " * 20_000 + valid, "headers": raw}),
        ("text/plain", {"content": valid, "headers": keyed | {"Content-Type": "text/plain"}}),
        ("no content type", {"content": valid, "headers": keyed}),
        ("no key", {"json": _body()}),
        ("empty key", {"json": _body(), "headers": {"X-API-Key": ""}}),
        ("garbage key", {"json": _body(), "headers": {"X-API-Key": "nonsense"}}),
        ("unknown key", {"json": _body(), "headers": {"X-API-Key": "lg_0123456789ab_x"}}),
        ("wrong secret", {"json": _body(), "headers": {"X-API-Key": api_key + "x"}}),
        ("read-only key", {"json": _body(), "headers": {"X-API-Key": read_only}}),
        ("old occurred_at", {"json": _body(occurred_at="1990-01-01T00:00:00Z"), "headers": keyed}),
        (
            "future occurred_at",
            {"json": _body(occurred_at=(now + timedelta(days=1)).isoformat()), "headers": keyed},
        ),
        ("timestamp occurred_at", {"json": _body(occurred_at=1.5), "headers": keyed}),
        ("empty Idempotency-Key", {"json": _body(), "headers": keyed | {"Idempotency-Key": ""}}),
        (
            "long Idempotency-Key",
            {"json": _body(), "headers": keyed | {"Idempotency-Key": "k" * 256}},
        ),
        (
            "bad body and bad Idempotency-Key",
            {"json": _body(amount="-1"), "headers": keyed | {"Idempotency-Key": ""}},
        ),
    ]


def test_refusals_are_handed_over_and_answered_by_the_route_byte_for_byte(
    healthy_cluster: LocalCluster, settings: Settings, api_key: str
):
    refusals = _refusals(settings, api_key)
    revoked = make_key(settings, f"fp-revoked-{uuid.uuid4().hex[:6]}", ("transactions:write",))
    limited = make_key(
        settings, f"fp-m-{uuid.uuid4().hex[:6]}", ("transactions:write",), merchant_id=42
    )
    _revoke(settings, revoked)
    refusals += [
        ("revoked key", {"json": _body(), "headers": {"X-API-Key": revoked}}),
        ("another merchant", {"json": _body(merchant_id=43), "headers": {"X-API-Key": limited}}),
    ]

    async def scenario(pair: Pair) -> None:
        for case, request in refusals:
            fast, full = await pair.both("POST", "/transactions", **request)
            assert 400 <= fast.status_code < 500, (case, fast.status_code, fast.text)
            assert_same(fast, full, case)
        assert (pair.path.taken, pair.path.handed_over) == (0, len(refusals))
        # other methods and paths never reach the fast path
        for method, url in (("PUT", "/transactions"), ("POST", "/transactions/")):
            fast, full = await pair.both(method, url, json=_body(), headers={"X-API-Key": api_key})
            assert_same(fast, full)
        assert pair.path.handed_over == len(refusals)

    _run(settings, scenario)


def test_unusual_but_valid_requests_are_handed_over_and_created_by_the_route(
    healthy_cluster: LocalCluster, settings: Settings, api_key: str
):
    async def chunks(body: bytes) -> AsyncIterator[bytes]:
        yield body[:5]
        yield body[5:]

    async def scenario(pair: Pair) -> None:
        charset = {"X-API-Key": api_key, "Content-Type": "application/json; charset=utf-8"}
        twice = [("X-API-Key", api_key), ("X-API-Key", "lg_0123456789ab_x")]
        fast, full = await pair.both(
            "POST", "/transactions", content=json.dumps(_body()), headers=charset
        )
        assert_same_created(fast, full)
        fast, full = await pair.both("POST", "/transactions", json=_body(), headers=twice)
        assert_same_created(fast, full)  # Starlette reads the first of two headers
        fast = await pair.fast.post(
            "/transactions",
            content=chunks(json.dumps(_body()).encode()),  # chunked: no Content-Length
            headers={"X-API-Key": api_key, "Content-Type": "application/json"},
        )
        assert fast.status_code == 201, fast.text
        assert (pair.path.taken, pair.path.handed_over) == (0, 3)

    _run(settings, scenario)


def test_write_failures_after_the_fast_path_took_a_request_answer_as_the_route(
    healthy_cluster: LocalCluster, settings: Settings, api_key: str
):
    """Once the write is sent the request cannot be handed over (it would be written twice):
    the fast path renders its errors with the app's handlers."""

    async def scenario(pair: Pair) -> None:
        taken = f"fp-dup-{uuid.uuid4().hex[:8]}"
        first = await pair.full.post(
            "/transactions", json=_body(external_id=taken), headers={"X-API-Key": api_key}
        )
        assert first.status_code == 201
        fast, full = await pair.both(
            "POST", "/transactions", json=_body(external_id=taken), headers={"X-API-Key": api_key}
        )
        assert fast.status_code == 409 and "external_id" in fast.json()["detail"]
        assert_same(fast, full)
        assert pair.path.taken == 1

    _run(settings, scenario)


def test_write_queue_timeout_is_the_same_503(
    healthy_cluster: LocalCluster, settings: Settings, api_key: str
):
    quick = settings.model_copy(update={"write_timeout": 0.2})

    async def scenario(pair: Pair) -> None:
        for app in (pair.fast_app, pair.full_app):
            await app.state.services.writer.stop()  # nothing takes the writes any more
        fast, full = await pair.both(
            "POST", "/transactions", json=_body(), headers={"X-API-Key": api_key}
        )
        assert fast.status_code == 503 and fast.headers["retry-after"] == "1"
        assert_same(fast, full)
        assert pair.path.taken == 1

    _run(quick, scenario)


def test_rate_limited_requests_are_handed_over_and_cost_one_token(
    healthy_cluster: LocalCluster, settings: Settings
):
    tight = settings.model_copy(update={"api_rate_limit": 0.5})  # burst of 1 token, then 1 / 2 s
    keys = [
        make_key(settings, f"fp-rl-{i}-{uuid.uuid4().hex[:6]}", ("transactions:write",))
        for i in range(2)
    ]

    async def scenario(pair: Pair) -> None:
        answers, body = [], _body()
        for key, client in zip(keys, (pair.fast, pair.full), strict=True):
            headers = {"X-API-Key": key}
            answers.append(
                [await client.post("/transactions", json=body, headers=headers) for _ in range(2)]
            )
        (fast_ok, fast_limited), (full_ok, full_limited) = answers
        assert_same_created(fast_ok, full_ok)
        assert fast_limited.status_code == 429
        assert_same(fast_limited, full_limited)
        assert (pair.path.taken, pair.path.handed_over) == (1, 1)

    _run(tight, scenario)


def test_metrics_count_fast_path_and_route_alike(
    healthy_cluster: LocalCluster, settings: Settings, api_key: str
):
    def counts(app: FastAPI) -> dict[str, float | None]:
        registry = app.state.services.metrics.registry
        labels = {"method": "POST", "route": "/transactions"}
        found = {
            status: registry.get_sample_value(
                "ledgerguard_http_requests_total", labels | {"status": status}
            )
            for status in ("201", "401", "422")
        }
        found["latency"] = registry.get_sample_value(
            "ledgerguard_http_request_duration_seconds_count", labels
        )
        found["committed"] = registry.get_sample_value("ledgerguard_transactions_committed_total")
        return found

    async def scenario(pair: Pair) -> None:
        for _ in range(3):
            await pair.both("POST", "/transactions", json=_body(), headers={"X-API-Key": api_key})
        for _ in range(2):
            await pair.both(
                "POST", "/transactions", json={"user_id": 1}, headers={"X-API-Key": api_key}
            )
        await pair.both("POST", "/transactions", json=_body())
        assert (pair.path.taken, pair.path.handed_over) == (3, 3)
        expected = {"201": 3.0, "401": 1.0, "422": 2.0, "latency": 6.0, "committed": 3.0}
        assert counts(pair.fast_app) == counts(pair.full_app) == expected

    _run(settings, scenario)


def _revoke(settings: Settings, plain: str) -> None:
    from ledgerguard.apikeys import prefix_of
    from ledgerguard.db.api_keys import revoke_api_key
    from ledgerguard.db.engines import migration_engine

    engine = migration_engine(settings)
    try:
        with engine.begin() as conn:
            revoke_api_key(conn, name_or_prefix=prefix_of(plain))
    finally:
        engine.dispose()


def test_a_failed_key_lookup_is_answered_as_the_route_with_one_lookup(
    healthy_cluster: LocalCluster, settings: Settings, api_key: str
):
    """Neither server answers and the key is not cached: the fast path answers the route's 503
    itself. Handing the request over would look the key up a second time (a stalled primary
    would cost the client twice `lookup_timeout`), so every lookup is counted."""
    from tests.support import free_ports

    primary_port, replica_port = free_ports(2)  # closed: nothing answers there
    unreachable = settings.model_copy(
        update={"primary_port": primary_port, "replica_port": replica_port}
    )

    async def scenario(pair: Pair) -> list[int]:
        lookups = []
        for app in (pair.fast_app, pair.full_app):
            keys = app.state.services.keys
            real_lookup, count = keys._lookup, [0]

            async def counted(prefixes: list[str], real: Any = real_lookup, n: list = count) -> Any:
                n[0] += 1
                return await real(prefixes)

            keys._lookup = counted
            lookups.append(count)
        fast, full = await pair.both(
            "POST", "/transactions", json=_body(), headers={"X-API-Key": api_key}
        )
        assert fast.status_code == 503 and fast.headers["retry-after"] == "1", fast.text
        assert_same(fast, full)
        assert (pair.path.taken, pair.path.handed_over) == (1, 0)
        return [count[0] for count in lookups]

    assert _run(unreachable, scenario) == [1, 1]  # fast path, route: one lookup each
