"""The primary's raw durable insert ceiling, measured with Debian's `sysbench oltp_insert`.

Why sysbench: it is a C client (libmariadb), so the figure is the server's, not a Python client's,
and it is the standard tool a DBA would reach for. It runs against the primary exactly as
configured for the API (same `innodb_flush_log_at_trx_commit=1`, `sync_binlog=1`, binlog and
replication on, TCP on loopback), with as many client threads as the API run has users. Each
event is one single-row autocommit INSERT, i.e. one durable commit; MariaDB's binlog group commit
merges concurrent commits into one fsync, as it does for the API's own commits.

Isolation from the application: a dedicated schema (`ledgerguard_bench`) and a throw-away account
that can touch nothing else, created by root before the run and dropped after it; the application
tables are never read or written. The throw-away password is random per run and reaches sysbench in
`MYSQL_PWD`, never on its command line (which `ps` shows every user): Debian's sysbench 1.0.20
passes no password to libmariadb without `--mysql-password`, and libmariadb then reads
`MYSQL_PWD` (checked: without it the login is refused "using password: NO"). sysbench reads no
option file, so a 0600 defaults file is not an option; the environment of a process is readable
only by its user and root.

A warm-up is cut off with `--report-checkpoints`: sysbench resets its counters and histogram at
that point, so the final statistics cover the measured window only.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ledgerguard.cluster.admin import admin_connection, run
from ledgerguard.cluster.spec import ServerSpec
from ledgerguard.db.dialect import Statement
from ledgerguard.errors import LedgerGuardError
from ledgerguard.load.stats import nearest_rank

BENCH_SCHEMA = "ledgerguard_bench"
BENCH_USER = "lg_bench"
#: Rows created by `prepare`; small, the run only inserts.
PREPARE_ROWS = 10_000

_TPS = re.compile(r"transactions:\s+(\d+)\s+\(([\d.]+) per sec\.\)")
_ERRORS = re.compile(r"ignored errors:\s+(\d+)")
_LAT = re.compile(r"^\s+(min|avg|max):\s+([\d.]+)$", re.MULTILINE)
_HISTOGRAM_LINE = re.compile(r"^\s+([\d.]+) \|[^|]*?(\d+)$", re.MULTILINE)
_INTERVAL = re.compile(r"^\[ (\d+)s \] thds: \d+ tps: ([\d.]+) .*?lat \(ms,99%\): ([\d.]+)", re.M)


class BenchError(LedgerGuardError):
    """A benchmark could not run; the message says what to install or start."""


@dataclass
class CeilingResult:
    """What sysbench measured; latencies in milliseconds."""

    threads: int
    seconds: float
    transactions: int
    tps: float
    latency_ms: dict[str, float | None]
    errors: int
    timeline: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool": "sysbench oltp_insert (Debian sysbench, libmariadb)",
            "schema": BENCH_SCHEMA,
            "threads": self.threads,
            "duration_s": self.seconds,
            "transactions": self.transactions,
            "tps": round(self.tps, 1),
            "latency_ms": self.latency_ms,
            "errors": self.errors,
            "timeline": self.timeline,
        }


def sysbench_path() -> str:
    path = shutil.which("sysbench")
    if path is None:
        raise BenchError(
            "sysbench is not installed: `apt-get install sysbench` (Debian package sysbench), "
            "or run `ledgerguard bench ingest --no-ceiling` to measure the API alone"
        )
    return path


def measure_ceiling(
    spec: ServerSpec,
    *,
    root_password: str,
    threads: int,
    duration: float,
    warmup: float,
    progress: Callable[[str], None],
) -> CeilingResult:
    """Prepare the bench schema, run sysbench for `warmup + duration` s, always clean up."""
    binary = sysbench_path()
    password = secrets.token_urlsafe(18)
    base = [
        binary,
        "oltp_insert",
        "--db-driver=mysql",
        f"--mysql-host={spec.host}",
        f"--mysql-port={spec.port}",
        f"--mysql-user={BENCH_USER}",
        f"--mysql-db={BENCH_SCHEMA}",
        "--tables=1",
        f"--table-size={PREPARE_ROWS}",
    ]
    with admin_connection(spec, password=root_password) as conn:
        _drop(conn, spec.host)
        for sql, params in (
            (f"CREATE DATABASE {BENCH_SCHEMA}", ()),
            (f"CREATE USER '{BENCH_USER}'@'{spec.host}' IDENTIFIED BY %s", (password,)),
            (f"GRANT ALL ON {BENCH_SCHEMA}.* TO '{BENCH_USER}'@'{spec.host}'", ()),
        ):
            run(conn, Statement(sql, params))
        try:
            _sysbench([*base, "prepare"], password=password, timeout=120)
            progress(f"sysbench oltp_insert: {threads} threads, {warmup:g} s + {duration:g} s")
            seconds = max(1, round(duration))
            warm = max(0, round(warmup))
            command = [
                *base,
                f"--threads={threads}",
                f"--time={seconds + warm}",
                "--report-interval=1",
                "--percentile=99",
                "--histogram=on",
            ]
            if warm:
                command.append(f"--report-checkpoints={warm}")
            output = _sysbench([*command, "run"], password=password, timeout=seconds + warm + 120)
        finally:
            _drop(conn, spec.host)
    return parse_sysbench(output, threads=threads, seconds=seconds, warmup=warm)


def _drop(conn: Any, host: str) -> None:
    run(conn, Statement(f"DROP DATABASE IF EXISTS {BENCH_SCHEMA}"))
    run(conn, Statement(f"DROP USER IF EXISTS '{BENCH_USER}'@'{host}'"))


def _sysbench(argv: list[str], *, password: str, timeout: float) -> str:
    """Run sysbench with the password in `MYSQL_PWD` (see the module docstring)."""
    env = {**os.environ, "MYSQL_PWD": password}
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, check=False, env=env
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"sysbench did not finish within {timeout:.0f} s") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise BenchError("sysbench failed: " + " / ".join(tail))
    return done.stdout


def parse_sysbench(output: str, *, threads: int, seconds: float, warmup: float) -> CeilingResult:
    """The last statistics block of a `sysbench ... run` (after any checkpoint reset)."""
    tps_matches = _TPS.findall(output)
    if not tps_matches:
        raise BenchError("could not read sysbench's output (no 'transactions:' line)")
    transactions, tps = tps_matches[-1]
    errors = _ERRORS.findall(output)
    latency: dict[str, float | None] = {}
    histogram = _histogram(output)
    for p in (50.0, 95.0, 99.0):
        latency[f"p{p:g}"] = _histogram_percentile(histogram, p)
    tail = output[output.rfind("Latency (ms):") :]
    stats = dict(_LAT.findall(tail))
    latency["mean"] = float(stats["avg"]) if "avg" in stats else None
    latency["max"] = float(stats["max"]) if "max" in stats else None
    timeline = [
        {"t": float(t) - warmup, "tps": float(rate), "p99_ms": float(p99)}
        for t, rate, p99 in _INTERVAL.findall(output)
        if float(t) > warmup
    ]
    return CeilingResult(
        threads=threads,
        seconds=seconds,
        transactions=int(transactions),
        tps=float(tps),
        latency_ms=latency,
        errors=int(errors[-1]) if errors else 0,
        timeline=timeline,
    )


def _histogram(output: str) -> list[tuple[float, int]]:
    start = output.rfind("Latency histogram")
    if start < 0:
        return []
    section = output[start : output.find("SQL statistics", start)]
    return [(float(value), int(count)) for value, count in _HISTOGRAM_LINE.findall(section)]


def _histogram_percentile(histogram: list[tuple[float, int]], p: float) -> float | None:
    """Nearest-rank percentile of sysbench's (value ms, count) histogram."""
    total = sum(count for _, count in histogram)
    if not total:
        return None
    rank = max(1, nearest_rank(p, total))
    seen = 0
    for value, count in histogram:
        seen += count
        if seen >= rank:
            return value
    return histogram[-1][0]
