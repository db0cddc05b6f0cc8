"""`ledgerguard bench verdict-writes`: what the streaming scorer's verdicts cost the servers.

The scorer commits a micro-batch of verdicts (~300 rows: 100 ms at 3,000 TPS) and its GTID
checkpoint in one transaction on the primary; the replica applies it and, having
`log_slave_updates` (the scorer follows its binlog), logs it again, and its dump thread sends the
events to the scorer, which reads and skips them. This measurement writes `batches` such batches
for each way of storing them, on the running cluster, and reads per verdict:

* the **primary's** and the **replica's** `mysqld` CPU (`/proc/PID/stat`, from the write of the
  first batch until the replica has applied the last one);
* the bytes each server's binlog grew by;
* the **scorer's write** CPU (rendering the rows and sending them: this process's thread CPU);
* the **scorer's decode** CPU for these events (`binlog.read_transactions`, the scorer's reader
  and table filter, over the variant's GTID interval of the replica's binlog).

Layouts (every variant also upserts the checkpoint row, as `checkpoint.commit_batch` does):

* `wide`: every verdict as a `fraud_scores` row (`UPSERT_REALTIME_SCORES`): the layout before
  migration 0012, without the five `realtime_*` columns it also wrote then;
* `wide_primary_key_only`: the same rows into a copy of `fraud_scores` without its four
  secondary indexes;
* `narrow`: every verdict as a `realtime_verdicts` row only (no alert queue: a lower bound);
* `split`: what the scorer does since 0012 (`checkpoint.write_batch`): every verdict in
  `realtime_verdicts`, the flagged ones (`flagged_share`) also in `fraud_scores`;
* `split_lookup_all`: the same, plus the look-up of every unflagged verdict in `fraud_scores`
  (a withdrawn flag) that the scorer saves by naming the verdicts that may replace one.

Each layout runs with MariaDB's `binlog_annotate_row_events` ON (its default: the text of every
row-based statement is logged before its rows, then again by the replica, and sent to every
binlog reader) and OFF (what the generated configs set since this measurement). CPU figures are
process CPU, so other work on the machine inflates them less than wall time, but a busy machine
still costs cache misses: compare variants of one run, and say how busy the machine was.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from ledgerguard.cluster.admin import admin_connection, run
from ledgerguard.cluster.local import LocalCluster
from ledgerguard.db.dialect import Statement
from ledgerguard.db.engines import migration_engine, writer_engine
from ledgerguard.db.fraud_results import UPSERT_REALTIME_SCORES, UPSERT_REALTIME_VERDICTS
from ledgerguard.db.realtime import UPSERT_CHECKPOINT, delete_checkpoint
from ledgerguard.db.tables import fraud_scores, realtime_verdicts
from ledgerguard.fraud.store import SCORES_COLUMNS, upsert_rows
from ledgerguard.load.bench.ingest import machine_info
from ledgerguard.load.bench.procstat import process_cpu_seconds
from ledgerguard.load.bench.servers import running_cluster
from ledgerguard.realtime.binlog import executed_position, read_transactions
from ledgerguard.realtime.checkpoint import VERDICTS_COLUMNS, write_batch
from ledgerguard.realtime.replica import replica_flavour
from ledgerguard.realtime.scorer import SERVER_ID_BASE
from ledgerguard.settings import Settings

Progress = Callable[[str], None]

#: Binlog client server id of the measurement (apart from the scorers' and `scorer-cpu`'s).
_SERVER_ID = SERVER_ID_BASE + 901
_CHECKPOINT = "bench-verdicts"
#: The copy of `fraud_scores` without secondary indexes (dropped at the end).
_BARE_TABLE = "bench_fraud_scores_pk_only"
LAYOUTS = ("wide", "wide_primary_key_only", "narrow", "split", "split_lookup_all")
_NO_IDS = np.empty(0, dtype=np.int64)


@dataclass(frozen=True)
class VerdictWritesOptions:
    batches: int = 50
    batch_rows: int = 300
    #: the variants run one after the other `rounds` times, figures summed
    rounds: int = 3
    flagged_share: float = 0.02
    seed: int = 11


def synthetic_verdicts(
    rng: np.random.Generator, first_id: int, rows: int, flagged_share: float
) -> pd.DataFrame:
    """Verdict rows (`scoring.VERDICT_COLUMNS`) as the scorer gives them: unflagged ones with
    no rule and no reason, `flagged_share` of them flagged with a rule and its reason."""
    flagged = rng.random(rows) < flagged_share
    now_us = int(time.time() * 1e6)
    amount_units = rng.integers(1_0000, 5_000_0000, rows)
    return pd.DataFrame(
        {
            "transaction_id": np.arange(first_id, first_id + rows, dtype=np.int64),
            "user_id": rng.integers(1, 1_000_000, rows),
            "ts_us": now_us - rng.integers(0, 60_000_000, rows),
            "amount_units": amount_units,
            "currency": "USD",
            "usd_units": amount_units,
            "score": np.where(flagged, 0.9, rng.random(rows) * 0.3).round(4),
            "flagged": flagged,
            "rule_ids": np.where(flagged, "near_reporting_line", ""),
            "reasons": np.where(flagged, "amount just under the 10,000.00 USD reporting line", ""),
            "model_version": pd.Series([None] * rows, dtype=object),
        }
    )


def _writer(layout: str) -> Callable[[sa.Engine, pd.DataFrame, datetime], None]:
    """How `layout` commits one batch (with the checkpoint row, in one transaction)."""
    if layout.startswith("split"):
        # new transactions: none replaces a stored verdict (the scorer's common case); or, as
        # without the scorer naming its revisions, every unflagged one looked up
        replacing = None if layout == "split_lookup_all" else _NO_IDS

        def split(engine: sa.Engine, verdicts: pd.DataFrame, now: datetime) -> None:
            write_batch(
                engine, verdicts, [], _CHECKPOINT, "0-1-1", None, len(verdicts), now, replacing
            )

        return split
    statement, names = {
        "wide": (UPSERT_REALTIME_SCORES, SCORES_COLUMNS),
        "wide_primary_key_only": (UPSERT_REALTIME_SCORES, SCORES_COLUMNS),
        "narrow": (UPSERT_REALTIME_VERDICTS, VERDICTS_COLUMNS),
    }[layout]

    def one_table(engine: sa.Engine, verdicts: pd.DataFrame, now: datetime) -> None:
        with engine.begin() as conn:
            dbapi_connection = conn.connection.dbapi_connection
            if layout == "wide_primary_key_only":
                upsert_rows(_Renamed(dbapi_connection), statement, verdicts, now, names)
            else:
                upsert_rows(dbapi_connection, statement, verdicts, now, names)
            conn.execute(UPSERT_CHECKPOINT, _checkpoint_row(len(verdicts), now))

    return one_table


class _Renamed:
    """A DBAPI connection whose cursor sends `fraud_scores` statements to the bare copy."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self.escape = connection.escape

    def cursor(self) -> Any:
        return _RenamedCursor(self._connection.cursor())


class _RenamedCursor:
    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def __enter__(self) -> _RenamedCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self._cursor.close()

    def execute(self, sql: str) -> Any:
        return self._cursor.execute(sql.replace("fraud_scores", _BARE_TABLE))


def _checkpoint_row(scored: int, now: datetime) -> dict[str, Any]:
    return {
        "partition_name": _CHECKPOINT,
        "gtid_pos": "0-1-1",
        "event_at": None,
        "transactions_scored": scored,
        "updated_at": now,
    }


def _binlog_bytes(conn: Any) -> int:
    return sum(int(row["File_size"]) for row in run(conn, Statement("SHOW BINARY LOGS")))


@dataclass
class _Totals:
    """One layout's sums over the rounds."""

    verdicts: int = 0
    wall: float = 0.0
    cpu: dict[str, float] = field(default_factory=lambda: {"primary": 0.0, "replica": 0.0})
    binlog: dict[str, int] = field(default_factory=lambda: {"primary": 0, "replica": 0})
    decode: float = 0.0
    write: float = 0.0
    events: int = 0
    kept: int = 0


def run_verdict_writes(
    settings: Settings, options: VerdictWritesOptions, *, progress: Progress
) -> dict[str, Any]:
    """The measurement (see the module docstring); the report."""
    load_before = os.getloadavg()
    cluster, _ = running_cluster(settings, progress)
    bench = _Bench(settings, cluster, options)
    ddl = migration_engine(settings)
    configured = _annotate(cluster)
    totals = {(layout, on): _Totals() for on in (True, False) for layout in LAYOUTS}
    try:
        with ddl.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {_BARE_TABLE}"))
            conn.execute(sa.text(f"CREATE TABLE {_BARE_TABLE} LIKE fraud_scores"))
            for index in sa.inspect(conn).get_indexes(_BARE_TABLE):
                conn.execute(sa.text(f"DROP INDEX {index['name']} ON {_BARE_TABLE}"))
        progress("warm-up: a few batches of each layout, and the binlog reader's fixed cost")
        for layout in LAYOUTS:
            bench.measure(layout, batches=min(5, options.batches))
        decode_fixed = min(bench.measure("empty", batches=1).decode for _ in range(3))
        # rounds interleave the variants: a machine getting busier biases none of them
        for round_number in range(options.rounds):
            for annotate in (True, False):
                _set_annotate(cluster, dict.fromkeys(configured, int(annotate)))
                bench.reconnect()  # a session takes the global value when it connects
                for layout in LAYOUTS:
                    state = "ON" if annotate else "OFF"
                    progress(
                        f"round {round_number + 1}/{options.rounds}: {layout}, "
                        f"binlog_annotate_row_events={state}"
                    )
                    bench.measure(layout, batches=options.batches, into=totals[layout, annotate])
    finally:
        _set_annotate(cluster, configured)
        bench.close()
        with ddl.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {_BARE_TABLE}"))
            conn.execute(delete_checkpoint(_CHECKPOINT))
            # the synthetic verdicts: not alerts of anybody's transactions
            for table in (fraud_scores, realtime_verdicts):
                conn.execute(sa.delete(table).where(table.c.transaction_id >= bench.first_id))
        ddl.dispose()
    return {
        "benchmark": "verdict-writes",
        "machine": machine_info(load_before),
        "configured_binlog_annotate_row_events": configured,
        "config": {
            "batches": options.batches,
            "batch_rows": options.batch_rows,
            "rounds": options.rounds,
            "flagged_share": options.flagged_share,
        },
        "scorer_decode_fixed_cpu_ms": round(1e3 * decode_fixed, 2),
        "results": [
            _figures(layout, annotate, total, decode_fixed, options.rounds)
            for (layout, annotate), total in totals.items()
        ],
    }


class _Bench:
    """Writes batches of one layout and reads what they cost (see the module docstring)."""

    def __init__(self, settings: Settings, cluster: LocalCluster, options: VerdictWritesOptions):
        self.settings = settings
        self.cluster = cluster
        self.options = options
        self.flavour = replica_flavour(settings)
        self.pids = {role: cluster.server(role).pid() for role in ("primary", "replica")}
        self.rng = np.random.default_rng(options.seed)
        # ids far above the API's, a fresh range each run
        self.first_id = self.next_id = 9_000_000_000_000 + (int(time.time()) % 1_000_000) * 10**7
        self.writer = writer_engine(settings, keep_open=True)

    def reconnect(self) -> None:
        self.writer.dispose()
        self.writer = writer_engine(self.settings, keep_open=True)

    def close(self) -> None:
        self.writer.dispose()

    def measure(self, layout: str, *, batches: int, into: _Totals | None = None) -> _Totals:
        """`batches` batches of `layout` ("empty": the checkpoint row alone), measured."""
        total = into if into is not None else _Totals()
        rows = 0 if layout == "empty" else self.options.batch_rows
        frames = []
        for _ in range(batches):
            frames.append(
                synthetic_verdicts(self.rng, self.next_id, rows, self.options.flagged_share)
            )
            self.next_id += rows
        write = _writer("split" if layout == "empty" else layout)
        cluster, specs = self.cluster, self.cluster.specs
        cluster.wait_for_replica(timeout=300)
        start = executed_position(self.settings, self.flavour)
        with (
            admin_connection(specs["primary"], password=cluster.root_password) as primary,
            admin_connection(specs["replica"], password=cluster.root_password) as replica,
        ):
            binlog_before = {"primary": _binlog_bytes(primary), "replica": _binlog_bytes(replica)}
            cpu_before = {role: process_cpu_seconds(pid) for role, pid in self.pids.items()}
            wall, writing = time.monotonic(), time.thread_time()
            for frame in frames:
                write(self.writer, frame, datetime.now(UTC))
            total.write += time.thread_time() - writing
            cluster.wait_for_replica(timeout=300)
            total.wall += time.monotonic() - wall
            for role, pid in self.pids.items():
                total.cpu[role] += (process_cpu_seconds(pid) or 0.0) - (cpu_before[role] or 0.0)
            total.binlog["primary"] += _binlog_bytes(primary) - binlog_before["primary"]
            total.binlog["replica"] += _binlog_bytes(replica) - binlog_before["replica"]
        end = executed_position(self.settings, self.flavour)
        began = time.thread_time()
        decoded, events = read_transactions(
            self.settings, flavour=self.flavour, start=start, end=end, server_id=_SERVER_ID
        )
        total.decode += time.thread_time() - began
        total.events += events
        total.kept += len(decoded)
        total.verdicts += rows * batches
        return total


def _figures(
    layout: str, annotate: bool, total: _Totals, decode_fixed: float, reads: int
) -> dict[str, Any]:
    """Per-verdict figures of one variant's totals."""
    n = max(total.verdicts, 1)
    return {
        "layout": layout,
        "binlog_annotate_row_events": annotate,
        "verdicts": total.verdicts,
        "wall_seconds": round(total.wall, 2),
        "primary_cpu_us_per_verdict": round(1e6 * total.cpu["primary"] / n, 1),
        "replica_cpu_us_per_verdict": round(1e6 * total.cpu["replica"] / n, 1),
        "primary_binlog_bytes_per_verdict": round(total.binlog["primary"] / n, 1),
        "replica_binlog_bytes_per_verdict": round(total.binlog["replica"] / n, 1),
        # the binlog reader's connection and start-up (measured on a one-row interval) apart:
        # what the scorer pays per verdict event it reads and skips
        "scorer_decode_cpu_us_per_verdict": round(
            1e6 * max(0.0, total.decode - reads * decode_fixed) / n, 2
        ),
        # the scorer's "write" stage: rendering the rows, the statements' round trips
        "scorer_write_cpu_us_per_verdict": round(1e6 * total.write / n, 2),
        "scorer_events_read": total.events,
        "scorer_transactions_kept": total.kept,
    }


def _annotate(cluster: LocalCluster) -> dict[str, int]:
    """`binlog_annotate_row_events` of each server (1: ON)."""
    values = {}
    for role in ("primary", "replica"):
        with admin_connection(cluster.specs[role], password=cluster.root_password) as conn:
            row = run(conn, Statement("SELECT @@GLOBAL.binlog_annotate_row_events AS v"))
            values[role] = int(row[0]["v"])
    return values


def _set_annotate(cluster: LocalCluster, values: dict[str, int]) -> None:
    """Set `binlog_annotate_row_events` GLOBALly (the benchmark's new connections and the
    replica's applier use it)."""
    for role, value in values.items():
        with admin_connection(cluster.specs[role], password=cluster.root_password) as conn:
            run(conn, Statement(f"SET GLOBAL binlog_annotate_row_events = {value}"))
