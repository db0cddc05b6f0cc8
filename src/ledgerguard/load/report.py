"""What a load run produces: live `Snapshot`s for the display and the final `LoadReport`.

`LoadReport.to_dict()` is the JSON contract of `ledgerguard load --json` (and of the `api` part of
`ledgerguard bench ingest`): `tps` counts committed transactions (HTTP 201) per second of the
measured window, `latency_ms` covers every HTTP response (errors included) and timeouts, and
`client` is the load generator's own CPU over the same window.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ledgerguard.load.stats import LatencyHistogram

if TYPE_CHECKING:
    from ledgerguard.load.runner import LoadConfig


@dataclass
class Snapshot:
    """What the live display shows after each tick."""

    elapsed: float
    duration: float
    warmup: float
    measuring: bool
    interval_tps: float
    total_tps: float
    interval_latency_ms: dict[str, float | None]
    total_latency_ms: dict[str, float | None]
    statuses: dict[str, int]
    errors: int
    client_cpu_percent: float
    users: int
    rate: float | None
    missed: int


@dataclass
class LoadReport:
    """The outcome of one run; `to_dict()` is the JSON of `ledgerguard load --json`."""

    config: LoadConfig
    window_seconds: float
    latency: LatencyHistogram
    statuses: Counter[str]
    error_samples: dict[str, str]
    cpu_seconds: float
    timeline: list[dict[str, Any]]
    missed: int
    event_loop: str

    @property
    def ok(self) -> int:
        return self.statuses.get(str(self.config.ok_status), 0)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def errors(self) -> int:
        return self.requests - self.ok

    @property
    def tps(self) -> float:
        """Successful (committed) transactions per second over the measured window."""
        return self.ok / self.window_seconds if self.window_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        cfg = self.config
        requests = self.requests
        return {
            "tool": "ledgerguard load",
            "url": cfg.url,
            "mode": "open" if cfg.rate else "closed",
            "users": cfg.users,
            "rate_target": cfg.rate,
            "api_keys": len(cfg.keys),
            "duration_s": round(self.window_seconds, 3),
            "warmup_s": cfg.warmup,
            "requests": requests,
            "ok": self.ok,
            "errors": self.errors,
            "error_rate": round(self.errors / requests, 6) if requests else 0.0,
            "missed": self.missed,
            "tps": round(self.tps, 1),
            "rps": round(requests / self.window_seconds, 1) if self.window_seconds else 0.0,
            "latency_ms": self.latency.summary_ms(),
            "status_counts": dict(sorted(self.statuses.items())),
            "error_samples": self.error_samples,
            "client": {
                "http_client": "ledgerguard.load.client (asyncio protocol, HTTP/1.1 keep-alive)",
                "event_loop": self.event_loop,
                "cpu_seconds": round(self.cpu_seconds, 3),
                "cpu_percent_of_one_core": round(
                    100 * self.cpu_seconds / self.window_seconds if self.window_seconds else 0, 1
                ),
                "cpu_us_per_request": round(1e6 * self.cpu_seconds / requests, 1)
                if requests
                else None,
            },
            "timeline": self.timeline,
        }
