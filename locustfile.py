"""Locust scenario for people who prefer Locust to `ledgerguard load`.

Locust is not a dependency of LedgerGuard; install it into the venv first:

    .venv/bin/pip install locust
    .venv/bin/locust -f locustfile.py --headless -u 50 -r 50 -t 60s

Host and key: `--host` / `LEDGERGUARD_API_URL` and `LEDGERGUARD_API_KEY` (comma-separated keys
are shared out among users), else the local API of the settings and the demo key of
`ledgerguard demo`, exactly as `ledgerguard load` resolves them. Bodies come from the same
generator (`ledgerguard.load.generator`). Users are closed-loop (no wait between requests) and use
Locust's FastHttpUser, its cheapest client; even so Locust needs several times the CPU per request
of `ledgerguard load`, which matters on a small machine where the client shares the CPU with
the API (see benchmarks/README.md).
"""

from __future__ import annotations

import itertools

from locust import FastHttpUser, constant, task

from ledgerguard.load.generator import TransactionGenerator
from ledgerguard.load.target import api_url as settings_api_url
from ledgerguard.load.target import demo_keys, env_keys, env_url


def _defaults() -> tuple[str | None, tuple[str, ...]]:
    """URL and keys from the environment, else from the settings (when they can be read)."""
    url, keys = env_url(), env_keys()
    if url and keys:
        return url, keys
    from ledgerguard.settings import Settings

    settings = Settings()
    return url or settings_api_url(settings), keys or demo_keys(settings)


DEFAULT_URL, KEYS = _defaults()
_user_numbers = itertools.count()


class PaymentClient(FastHttpUser):
    """One payment client posting transactions back to back."""

    host = DEFAULT_URL
    wait_time = constant(0)

    def on_start(self) -> None:
        number = next(_user_numbers)
        self.generator = TransactionGenerator()
        self.headers = {"X-API-Key": KEYS[number % len(KEYS)], "Content-Type": "application/json"}

    @task
    def post_transaction(self) -> None:
        with self.client.post(
            "/transactions",
            data=self.generator.body(),
            headers=self.headers,
            name="POST /transactions",
            catch_response=True,
        ) as response:
            if response.status_code != 201:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
