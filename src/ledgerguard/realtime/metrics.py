"""Prometheus metrics of the streaming scorer, on its own registry and port.

`ledgerguard_scorer_*`: events read and transactions scored (rates in PromQL), the commit ->
verdict latency (the transaction's `created_at`, written by the API at commit, to the verdict's
write), the lag behind the replica in transactions and seconds, whether the binlog stream is
connected, and the webhook's outcomes. `FraudScorerLagging` (deploy/prometheus/rules/scorer.yml)
fires on the lag.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

#: Buckets of the commit -> verdict latency: the target is 100 ms, the limit 500 ms.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10, 30, 60)


@dataclass
class ScorerMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.events_read = Counter(
            "ledgerguard_scorer_events_read", "Binlog events read from the replica", registry=r
        )
        self.transactions_read = Counter(
            "ledgerguard_scorer_binlog_transactions",
            "Committed transactions (GTIDs) read from the replica's binlog",
            registry=r,
        )
        self.scored = Counter(
            "ledgerguard_scorer_transactions_scored",
            "Payment transactions given a real-time verdict",
            registry=r,
        )
        self.revised = Counter(
            "ledgerguard_scorer_verdicts_revised",
            "Earlier verdicts rewritten because a later transaction completed a burst or group",
            registry=r,
        )
        self.flagged = Counter(
            "ledgerguard_scorer_flagged", "Transactions flagged in real time", registry=r
        )
        self.latency = Histogram(
            "ledgerguard_scorer_verdict_latency_seconds",
            "From the transaction's commit (created_at) to its verdict's commit",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.cpu_seconds = Counter(
            "ledgerguard_scorer_cpu_seconds",
            "CPU seconds of the scorer by stage (decode: the binlog thread; see "
            "`ledgerguard bench scorer-cpu`)",
            ["stage"],
            registry=r,
        )
        self.lag_transactions = Gauge(
            "ledgerguard_scorer_lag_transactions",
            "Transactions the replica has applied that the scorer has not scored yet",
            registry=r,
        )
        self.lag_seconds = Gauge(
            "ledgerguard_scorer_lag_seconds",
            "Age of the oldest transaction not scored yet (0 when caught up)",
            registry=r,
        )
        self.connected = Gauge(
            "ledgerguard_scorer_connected", "1 while the binlog stream is connected", registry=r
        )
        self.reconnects = Counter(
            "ledgerguard_scorer_reconnects", "Binlog stream reconnections", registry=r
        )
        self.alerts = Counter(
            "ledgerguard_scorer_alert_deliveries",
            "Webhook delivery attempts by outcome",
            ["outcome"],
            registry=r,
        )
        self.dead_letters = Gauge(
            "ledgerguard_scorer_alert_dead_letters",
            "Alerts that failed every retry (`ledgerguard alerts redeliver`)",
            registry=r,
        )

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Expose /metrics on `host:port` (a daemon thread of this process)."""
        start_http_server(port, addr=host, registry=self.registry)
