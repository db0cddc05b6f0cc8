"""What the database servers say during a benchmark: durability settings and replica lag.

Replica lag is sampled every `interval` seconds (0.5 by default) by comparing GTID positions, not
from `Seconds_Behind_Master`, which has a 1-second resolution and reads 0 whenever the SQL thread
is idle even if the IO thread is behind. Each sample reads the primary's `gtid_binlog_pos`, then
the replica's `gtid_slave_pos` (MariaDB), and keeps the primary's history of (time, sequence). The
lag of a sample is the age of the oldest transaction the replica has not applied yet: now minus
the moment the primary reached that transaction's sequence number (interpolated linearly between
the two primary samples around it), 0 when the replica has everything. This is what a heartbeat
table would report, at the sampling resolution, without writing anything to the primary.
`Seconds_Behind_Master` and the GTID gap (transactions not yet applied; one API group commit of
many rows is one transaction) are reported alongside.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pymysql

from ledgerguard.cluster.admin import admin_connection, run, scalar
from ledgerguard.cluster.errors import ClusterError
from ledgerguard.cluster.local import LocalCluster
from ledgerguard.cluster.spec import ServerSpec
from ledgerguard.db.consistency import gtid_gap, gtid_sequence
from ledgerguard.db.dialect import (
    Flavour,
    Statement,
    applied_gtids_query,
    binlog_gtids_query,
    parse_replica_status,
    replica_status_query,
)
from ledgerguard.load.stats import exact_percentile
from ledgerguard.settings import Settings

#: A benchmark's progress line (stderr).
Progress = Callable[[str], None]


def running_cluster(settings: Settings, progress: Progress) -> tuple[LocalCluster, bool]:
    """The local cluster the settings name, started first when it is not healthy; and whether
    this call started it (a benchmark stops only what it started)."""
    cluster = LocalCluster(settings)
    started = not cluster.status().healthy
    if started:
        progress("starting the cluster")
        cluster.up(progress=progress)
    return cluster, started


#: The benchmarks run on the local cluster, which is MariaDB (the lag estimate needs its
#: `domain-server-sequence` positions).
_FLAVOUR = Flavour.MARIADB

#: Server variables that decide how durable (and how fast) a commit is.
DURABILITY_VARIABLES = (
    "version",
    "innodb_flush_log_at_trx_commit",
    "sync_binlog",
    "log_bin",
    "binlog_format",
    "innodb_doublewrite",
    "innodb_flush_method",
    "innodb_buffer_pool_size",
    "innodb_log_file_size",
    "binlog_commit_wait_count",
    "binlog_commit_wait_usec",
    "slave_parallel_threads",
    "slave_parallel_mode",
    "read_only",
    "rpl_semi_sync_master_enabled",
    "rpl_semi_sync_master_wait_point",
    "rpl_semi_sync_master_timeout",
    "rpl_semi_sync_slave_enabled",
)
#: Semi-sync counters: whether commits waited for the replica's acknowledgement during a phase.
SEMI_SYNC_STATUS = (
    "Rpl_semi_sync_master_status",
    "Rpl_semi_sync_master_yes_tx",
    "Rpl_semi_sync_master_no_tx",
    "Rpl_semi_sync_master_net_avg_wait_time",
)


def durability_settings(spec: ServerSpec, *, root_password: str) -> dict[str, str]:
    """The variables above as the running server reports them (absent ones are left out)."""
    names = ", ".join(f"'{name}'" for name in DURABILITY_VARIABLES)
    with admin_connection(spec, password=root_password) as conn:
        rows = run(conn, Statement(f"SHOW GLOBAL VARIABLES WHERE Variable_name IN ({names})"))
    return {row["Variable_name"]: row["Value"] for row in rows}


def semi_sync_status(spec: ServerSpec, *, root_password: str) -> dict[str, str]:
    """The primary's semi-sync counters now (empty when the plugin is not loaded)."""
    names = ", ".join(f"'{name}'" for name in SEMI_SYNC_STATUS)
    with admin_connection(spec, password=root_password) as conn:
        rows = run(conn, Statement(f"SHOW GLOBAL STATUS WHERE Variable_name IN ({names})"))
    return {row["Variable_name"]: row["Value"] for row in rows}


def semi_sync_during(before: dict[str, str], after: dict[str, str]) -> dict[str, Any] | None:
    """Commits acknowledged by the replica (yes) and not (no: async fallback) between two reads."""
    if not after:
        return None

    def delta(name: str) -> int | None:
        try:
            return int(after[name]) - int(before[name])
        except (KeyError, ValueError):
            return None

    return {
        "status_at_end": after.get("Rpl_semi_sync_master_status"),
        "acknowledged_commits": delta("Rpl_semi_sync_master_yes_tx"),
        "unacknowledged_commits": delta("Rpl_semi_sync_master_no_tx"),
        "net_avg_wait_us": after.get("Rpl_semi_sync_master_net_avg_wait_time"),
    }


@dataclass
class LagSample:
    t: float
    lag_s: float | None
    gtid_gap: int | None
    seconds_behind: int | None


@dataclass
class LagHistory:
    """Primary positions over time, and the lag estimate for a replica position."""

    times: list[float] = field(default_factory=list)
    sequences: list[int] = field(default_factory=list)

    def add_primary(self, t: float, sequence: int) -> None:
        if self.sequences and sequence < self.sequences[-1]:
            sequence = self.sequences[-1]  # positions never go back; guard against odd reads
        self.times.append(t)
        self.sequences.append(sequence)

    def lag(self, t: float, replica_sequence: int) -> float:
        """Age at `t` of the oldest transaction after `replica_sequence` (0 when caught up)."""
        if not self.sequences or replica_sequence >= self.sequences[-1]:
            return 0.0
        missing = replica_sequence + 1
        i = bisect.bisect_left(self.sequences, missing)
        if i == 0:
            return max(0.0, t - self.times[0])  # older than our history: a lower bound
        s0, s1 = self.sequences[i - 1], self.sequences[i]
        t0, t1 = self.times[i - 1], self.times[i]
        reached = t0 + (t1 - t0) * (missing - s0) / (s1 - s0)
        return max(0.0, t - reached)


class LagSampler:
    """Samples replica lag in a background thread between `start()` and `stop()`."""

    def __init__(
        self, primary: ServerSpec, replica: ServerSpec, *, root_password: str, interval: float
    ) -> None:
        self.primary = primary
        self.replica = replica
        self.root_password = root_password
        self.interval = interval
        self.samples: list[LagSample] = []
        self.errors: list[str] = []
        self._history = LagHistory()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="replica-lag", daemon=True)
        self._started = 0.0

    def start(self) -> None:
        self._started = time.monotonic()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            with (
                admin_connection(self.primary, password=self.root_password) as primary,
                admin_connection(self.replica, password=self.root_password) as replica,
            ):
                while not self._stop.is_set():
                    began = time.monotonic()
                    self._sample(primary, replica)
                    self._stop.wait(max(0.0, self.interval - (time.monotonic() - began)))
        except (ClusterError, pymysql.MySQLError) as exc:
            self.errors.append(str(exc))

    def _sample(self, primary: Any, replica: Any) -> None:
        primary_pos = scalar(primary, binlog_gtids_query(_FLAVOUR))
        t_primary = time.monotonic()
        replica_pos = scalar(replica, applied_gtids_query(_FLAVOUR))
        t = time.monotonic()
        rows = run(replica, replica_status_query(_FLAVOUR))
        behind = parse_replica_status(_FLAVOUR, rows[0] if rows else None).seconds_behind
        p_seq, r_seq = gtid_sequence(primary_pos), gtid_sequence(replica_pos)
        lag = None
        if p_seq is not None and r_seq is not None:
            self._history.add_primary(t_primary, p_seq)
            lag = self._history.lag(t, r_seq)
        self.samples.append(
            LagSample(
                t=round(t - self._started, 3),
                lag_s=None if lag is None else round(lag, 3),
                gtid_gap=gtid_gap(primary_pos, replica_pos),
                seconds_behind=behind,
            )
        )

    def summary(self) -> dict[str, Any]:
        """p50/p99/max of the lag and the GTID gap, plus the raw samples (for plotting)."""
        lags = [s.lag_s for s in self.samples if s.lag_s is not None]
        gaps = [float(s.gtid_gap) for s in self.samples if s.gtid_gap is not None]
        behind = [s.seconds_behind for s in self.samples if s.seconds_behind is not None]
        return {
            "method": "GTID positions sampled every "
            f"{self.interval:g} s (age of the oldest unapplied transaction)",
            "samples": len(self.samples),
            "lag_s": _summary(lags),
            "gtid_gap_transactions": _summary(gaps),
            "seconds_behind_master_max": max(behind) if behind else None,
            "errors": self.errors,
            "series": [{"t": s.t, "lag_s": s.lag_s, "gap": s.gtid_gap} for s in self.samples],
        }


def _summary(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None, "max": None}
    return {
        "p50": round(exact_percentile(values, 50), 3),
        "p99": round(exact_percentile(values, 99), 3),
        "max": round(max(values), 3),
    }
