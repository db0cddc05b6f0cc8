"""Rate limiting, on an in-process app built by the factory with its own (tight) settings."""

from __future__ import annotations

import asyncio

import httpx

from ledgerguard.api.main import create_app
from ledgerguard.cluster.local import LocalCluster
from ledgerguard.settings import Settings

#: an id no test creates, so allowed requests answer 404 whatever ran before
ABSENT_ID = 9_000_000_000_000


async def _burst(settings: Settings, key: str, n: int) -> list[httpx.Response]:
    app = create_app(settings, workers=1)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return [
                await client.get(f"/transactions/{ABSENT_ID}", headers={"X-API-Key": key})
                for _ in range(n)
            ]


def test_rate_limit_answers_429_with_retry_after(
    healthy_cluster: LocalCluster, settings: Settings, api_key: str
):
    tight = settings.model_copy(update={"api_rate_limit": 2.0})  # burst of 4, then 2/s
    responses = asyncio.run(_burst(tight, api_key, 8))
    codes = [r.status_code for r in responses]
    assert codes[:4] == [404] * 4, codes  # allowed (no such row is fine)
    assert 429 in codes[4:], codes
    limited = next(r for r in responses if r.status_code == 429)
    assert int(limited.headers["retry-after"]) >= 1
    assert "rate limit" in limited.json()["detail"]
