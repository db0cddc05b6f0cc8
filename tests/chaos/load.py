"""A small background load for fault injection: every request carries a user_id of its own, so
afterwards each 201-acknowledged request can be found (exactly once) in the table."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx
import pymysql

from ledgerguard.cluster.local import LocalCluster
from ledgerguard.settings import Settings


@dataclass
class LoadResult:
    acknowledged: dict[int, int] = field(default_factory=dict)  # user_id (unique) -> id
    statuses: Counter = field(default_factory=Counter)
    #: monotonic times of 201 answers, to measure recovery
    ok_times: list[float] = field(default_factory=list)


class BackgroundLoad:
    """`users` concurrent clients in a thread of their own until `stop()`.

    With `retry_same_key`, a request that fails at the connection level is retried with the same
    Idempotency-Key (what a careful client does when an API worker dies mid-request).
    """

    def __init__(self, api_url: str, key: str, *, users: int = 6, retry_same_key: bool = False):
        self.api_url, self.key, self.users = api_url, key, users
        self.retry_same_key = retry_same_key
        self.result = LoadResult()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        #: user ids of this run: base + client * 1e6 + sequence (unique across runs; up to 1000
        #: clients)
        self.base = 10**12 + uuid.uuid4().int % 10**6 * 10**9

    def __enter__(self) -> BackgroundLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> LoadResult:
        self._stop.set()
        self._thread.join(timeout=60)
        return self.result

    async def _main(self) -> None:
        async with httpx.AsyncClient(base_url=self.api_url, timeout=10) as client:
            await asyncio.gather(*(self._user(client, n) for n in range(self.users)))

    async def _user(self, client: httpx.AsyncClient, n: int) -> None:
        seq = 0
        while not self._stop.is_set():
            seq += 1
            user_id = self.base + n * 1_000_000 + seq
            body = {"user_id": user_id, "amount": "12.34", "currency": "USD"}
            headers = {"X-API-Key": self.key}
            if self.retry_same_key:
                headers["Idempotency-Key"] = f"chaos-{user_id}"
            for _attempt in range(20 if self.retry_same_key else 1):
                try:
                    response = await client.post("/transactions", json=body, headers=headers)
                except httpx.TransportError:
                    self.result.statuses["connection-error"] += 1
                    await asyncio.sleep(0.05)
                    continue
                self.result.statuses[response.status_code] += 1
                if response.status_code == 201:
                    self.result.acknowledged[user_id] = response.json()["id"]
                    self.result.ok_times.append(time.monotonic())
                    break
                if response.status_code != 503 or not self.retry_same_key:
                    break
                await asyncio.sleep(0.1)
            else:
                continue
            if response.status_code == 503:
                await asyncio.sleep(0.1)

    def wait_for_status(self, status: int, count: int = 1, timeout: float = 20) -> None:
        """Block until `count` more answers with `status` arrived (e.g. 503 once a server died)."""
        target = self.result.statuses[status] + count
        deadline = time.monotonic() + timeout
        while self.result.statuses[status] < target:
            assert time.monotonic() < deadline, f"no {status} answer: {self.result.statuses}"
            time.sleep(0.05)

    def wait_for_acks(self, count: int, timeout: float = 20) -> None:
        """Block until `count` more requests were acknowledged (the write path works)."""
        target = len(self.result.acknowledged) + count
        deadline = time.monotonic() + timeout
        while len(self.result.acknowledged) < target:
            assert time.monotonic() < deadline, f"no progress: {self.result.statuses}"
            time.sleep(0.05)


def assert_each_acknowledged_once(settings: Settings, port: int, load: BackgroundLoad) -> None:
    """Every 201-acknowledged request is in the table exactly once, with the id it was given."""
    result = load.result
    assert result.acknowledged, result.statuses
    conn = pymysql.connect(
        host="127.0.0.1",
        port=port,
        user=settings.api_db_user,
        password=settings.api_db_password.get_secret_value(),
        database=settings.database,
    )
    with conn, conn.cursor() as cur:
        cur.execute(
            "SELECT user_id, id FROM transactions WHERE user_id BETWEEN %s AND %s",
            (load.base, load.base + 10**9),
        )
        stored: dict[int, list[int]] = {}
        for user_id, row_id in cur.fetchall():
            stored.setdefault(user_id, []).append(row_id)
    missing = [u for u in result.acknowledged if u not in stored]
    assert not missing, f"{len(missing)} acknowledged transactions lost, e.g. {missing[:3]}"
    for user_id, row_id in result.acknowledged.items():
        assert stored[user_id] == [row_id], (user_id, stored[user_id], row_id)


def assert_failed_over_and_rejoined(
    settings: Settings, old_port: int, load: BackgroundLoad
) -> None:
    """After a failover: the roles swapped, every acknowledged write is on the new primary once,
    and the old primary comes back read-only as its replica with nothing diverged."""
    promoted = LocalCluster(settings)
    assert promoted.swapped and promoted.specs["primary"].port != old_port
    assert_each_acknowledged_once(settings, promoted.specs["primary"].port, load)
    promoted.up()
    promoted.wait_for_replica(timeout=60)
    status = promoted.status()
    assert status.healthy and status.replica.read_only and not status.primary.read_only
    assert promoted.checksum().clean
