"""The alert webhook: signed, retried for hours, dead letters kept for `alerts redeliver`.

The scorer writes each new alert into the outbox (`alert_deliveries`) in the same transaction as
the verdict, so a crash loses none and a replay makes none twice (the delivery id is derived from
the transaction id). `AlertDelivery` sends due rows from its own thread with its own connection:
a receiver that answers 500 or hangs delays only its alerts, never scoring.

Each POST carries the JSON body and three headers:

* `X-LedgerGuard-Delivery`: the delivery id; a retry repeats it, receivers de-duplicate on it;
* `X-LedgerGuard-Timestamp`: Unix seconds of this attempt;
* `X-LedgerGuard-Signature`: `t=<timestamp>,v1=<hex>[,v1=<hex>...]`, one HMAC-SHA256 per active
  secret over `<timestamp>.<raw body>`. Signing the timestamp lets a receiver refuse replays
  (`verify` rejects a timestamp older than its tolerance); several `v1` values let a secret be
  rotated without a gap.

Attempts time out after `alert_webhook_timeout` seconds and never follow redirects (a redirect is
a failure: the signed body is not re-sent somewhere else). A failed attempt is retried after
5 s, 10 s, 20 s, ... (at most an hour apart) until `alert_retry_hours` have passed since the
alert was made; then it is a dead letter (`status = 'dead'`) until `ledgerguard alerts
redeliver` queues it again.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import sqlalchemy as sa

from ledgerguard.db.realtime import count_dead, mark_delivery, requeue_dead, select_due_alerts
from ledgerguard.realtime.metrics import ScorerMetrics
from ledgerguard.settings import Settings

log = logging.getLogger(__name__)

DELIVERY_HEADER = "X-LedgerGuard-Delivery"
TIMESTAMP_HEADER = "X-LedgerGuard-Timestamp"
SIGNATURE_HEADER = "X-LedgerGuard-Signature"
#: First retry delay and the longest one.
FIRST_RETRY_SECONDS = 5.0
MAX_RETRY_SECONDS = 3600.0


def secrets_of(settings: Settings) -> list[str]:
    """The active signing secrets (comma-separated in `LEDGERGUARD_ALERT_WEBHOOK_SECRETS`)."""
    if settings.alert_webhook_secrets is None:
        return []
    return [
        s.strip() for s in settings.alert_webhook_secrets.get_secret_value().split(",") if s.strip()
    ]


def sign(body: bytes, *, timestamp: int, secrets: list[str]) -> str:
    """The signature header of `body` sent at `timestamp`, one `v1` per secret."""
    signed = f"{timestamp}.".encode() + body
    parts = [f"t={timestamp}"]
    parts += [f"v1={hmac.new(s.encode(), signed, hashlib.sha256).hexdigest()}" for s in secrets]
    return ",".join(parts)


def verify(
    body: bytes,
    header: str,
    *,
    secret: str,
    tolerance_seconds: float = 300,
    now: float | None = None,
) -> bool:
    """What a receiver does: one `v1` matches `secret` and the timestamp is recent."""
    fields = [part.split("=", 1) for part in header.split(",") if "=" in part]
    stamps = [value for name, value in fields if name == "t"]
    if len(stamps) != 1 or not stamps[0].isdigit():
        return False
    timestamp = int(stamps[0])
    if abs((now if now is not None else time.time()) - timestamp) > tolerance_seconds:
        return False
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    return any(name == "v1" and hmac.compare_digest(value, expected) for name, value in fields)


def retry_delay(attempts: int) -> float:
    """Seconds before attempt `attempts + 1`: 5, 10, 20, ... at most an hour."""
    return min(FIRST_RETRY_SECONDS * 2 ** max(attempts - 1, 0), MAX_RETRY_SECONDS)


@dataclass
class DeliveryCounts:
    delivered: int = 0
    failed: int = 0
    dead: int = 0


class AlertDelivery:
    """Sends due outbox rows to the webhook; `run` loops until stopped."""

    def __init__(
        self, settings: Settings, engine: sa.Engine, metrics: ScorerMetrics | None = None
    ) -> None:
        if settings.alert_webhook_url is None:
            raise ValueError("no LEDGERGUARD_ALERT_WEBHOOK_URL configured")
        self._url = settings.alert_webhook_url
        self._secrets = secrets_of(settings)
        self._retry_for = timedelta(hours=settings.alert_retry_hours)
        self._engine = engine
        self._metrics = metrics
        self._client = httpx.Client(timeout=settings.alert_webhook_timeout, follow_redirects=False)

    def close(self) -> None:
        self._client.close()

    def deliver_due(self, *, limit: int = 100) -> DeliveryCounts:
        """One pass over the alerts due now."""
        counts = DeliveryCounts()
        now = datetime.now(UTC)
        with self._engine.connect() as conn:
            due = conn.execute(select_due_alerts(now, limit)).all()
        for row in due:
            error = self._post(row.delivery_id, row.payload.encode())
            now = datetime.now(UTC)
            attempts = row.attempts + 1
            if error is None:
                values = {
                    "status": "delivered",
                    "attempts": attempts,
                    "delivered_at": now,
                    "last_error": "",
                }
                counts.delivered += 1
            else:
                created = row.created_at
                retry_at = now + timedelta(seconds=retry_delay(attempts))
                dead = retry_at - created > self._retry_for
                values = {
                    "status": "dead" if dead else "pending",
                    "attempts": attempts,
                    "next_attempt_at": retry_at,
                    "last_error": error[:500],
                }
                counts.failed += 1
                counts.dead += int(dead)
            with self._engine.begin() as conn:
                conn.execute(mark_delivery(row.delivery_id, **values))
            if self._metrics is not None:
                outcome = (
                    "delivered"
                    if error is None
                    else ("dead" if values["status"] == "dead" else "failed")
                )
                self._metrics.alerts.labels(outcome).inc()
        return counts

    def _post(self, delivery_id: str, body: bytes) -> str | None:
        """One attempt; None when the receiver answered 2xx, else what went wrong."""
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            DELIVERY_HEADER: delivery_id,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(body, timestamp=timestamp, secrets=self._secrets),
        }
        try:
            response = self._client.post(self._url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"

    def dead_letters(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(count_dead()).scalar() or 0)

    def run(
        self, stop: threading.Event, *, idle_seconds: float = 0.5, gauge_seconds: float = 10.0
    ) -> None:
        """Deliver until `stop` is set; errors of the database are logged and retried.

        The dead-letter gauge is refreshed every `gauge_seconds`, not on every poll: the
        primary serves the API first.
        """
        gauge_at = 0.0
        while not stop.is_set():
            try:
                counts = self.deliver_due()
                if self._metrics is not None and time.monotonic() - gauge_at >= gauge_seconds:
                    self._metrics.dead_letters.set(self.dead_letters())
                    gauge_at = time.monotonic()
            except sa.exc.SQLAlchemyError as exc:
                log.warning("alert delivery: %s", exc)
                counts = DeliveryCounts()
            if not (counts.delivered or counts.failed):
                stop.wait(idle_seconds)


def redeliver(settings: Settings, engine: sa.Engine) -> tuple[int, DeliveryCounts]:
    """Queue every dead letter again and send it now; (requeued, outcome of this pass)."""
    with engine.begin() as conn:
        requeued = conn.execute(requeue_dead(datetime.now(UTC))).rowcount
    delivery = AlertDelivery(settings, engine)
    total = DeliveryCounts()
    try:
        while True:
            counts = delivery.deliver_due()
            total.delivered += counts.delivered
            total.failed += counts.failed
            total.dead += counts.dead
            if counts.delivered + counts.failed == 0 or total.delivered + total.failed >= requeued:
                break
    finally:
        delivery.close()
    return requeued, total
