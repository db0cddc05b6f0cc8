"""Where the database servers' CPU goes with and without the streaming scorer (issue #13).

`ledgerguard bench realtime` compares the servers' CPU per transaction of two closed-loop
phases that run at different rates on a saturated 2-core machine, so a per-transaction
difference mixes what the scorer makes the servers do with what the lower rate and the
saturation do to every commit. This script runs phases of the same load at a **fixed rate**
(open loop, `--rate`), alternating without / with the scorer, and reads for each phase:

* every process's CPU (`/proc/PID/stat`), per transaction;
* each server's CPU **per thread** (`/proc/PID/task/TID/stat`), each thread named from
  `information_schema.PROCESSLIST.TID` (its command and user; a client connection is named
  `scorer` when its peer port belongs to the scorer's process), the rest `background`;
* each server's status counters (`SHOW GLOBAL STATUS`: statements, commits, group commits,
  fsyncs, bytes sent) and its context switches.

Run from a worktree whose `.env` names a private cluster with the API running::

    python benchmarks/server_cpu_phases.py --rate 1800 --duration 20 --rounds 2 > out.json

It is a measuring tool for one question, not a `ledgerguard bench` command: its figures and
command are in benchmarks/README.md ("Session 8").
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pymysql

from ledgerguard.load.bench.ingest import IngestOptions, bench_keys, catch_up, ensure_api
from ledgerguard.load.bench.procstat import CpuMeter, children_of
from ledgerguard.load.bench.realtime import _wait_caught_up
from ledgerguard.load.bench.servers import running_cluster
from ledgerguard.load.runner import LoadConfig, run_load_sync
from ledgerguard.load.target import api_url
from ledgerguard.realtime.process import running_pid, start_scorer, stop_scorer
from ledgerguard.settings import Settings

_TICKS = os.sysconf("SC_CLK_TCK")
#: Counters read from each server (deltas per phase).
_STATUS = (
    "Questions",
    "Com_insert",
    "Com_select",
    "Com_commit",
    "Com_begin",
    "Com_update",
    "Com_rollback",
    "Com_admin_commands",
    "Binlog_commits",
    "Binlog_group_commits",
    "Binlog_bytes_written",
    "Bytes_sent",
    "Bytes_received",
    "Innodb_os_log_fsyncs",
    "Innodb_data_fsyncs",
    "Innodb_rows_inserted",
    "Handler_write",
    "Handler_read_key",
    "Handler_update",
    "Innodb_rows_updated",
    "Rpl_semi_sync_master_yes_tx",
    "Rpl_semi_sync_master_no_tx",
    "Threads_created",
)


def _threads(pid: int) -> dict[int, float]:
    """CPU seconds of every thread of `pid`."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / _TICKS
    return out


def _switches(pid: int) -> dict[str, int]:
    total = {"voluntary": 0, "nonvoluntary": 0}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "status").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("voluntary_ctxt_switches"):
                total["voluntary"] += int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches"):
                total["nonvoluntary"] += int(line.split()[1])
    return total


def _scorer_ports() -> set[int]:
    """Local ports of the scorer's TCP connections (`ss -tnp`: own processes only)."""
    pid = running_pid(Settings())
    if pid is None:
        return set()
    text = subprocess.run(["ss", "-tnp"], capture_output=True, text=True, check=False).stdout
    ports = set()
    for line in text.splitlines():
        if f"pid={pid}," in line:
            ports.add(int(line.split()[3].rsplit(":", 1)[1]))
    return ports


def _connect(cluster: Any, role: str) -> pymysql.connections.Connection:
    """Root on the server's unix socket, tuple rows."""
    return pymysql.connect(
        unix_socket=str(cluster.server(role).spec.socket),
        user="root",
        password=cluster.root_password,
        autocommit=True,
    )


def _names(conn: pymysql.connections.Connection, scorer_ports: set[int]) -> dict[int, str]:
    """Thread id -> role, from the processlist."""
    with conn.cursor() as cursor:
        cursor.execute("SELECT TID, USER, HOST, COMMAND FROM information_schema.PROCESSLIST")
        rows = cursor.fetchall()
    names = {}
    for tid, user, host, command in rows:
        port = host.rsplit(":", 1)[1] if host and ":" in host else ""
        if port.isdigit() and int(port) in scorer_ports:
            role = f"scorer {command}"
        elif command in ("Binlog Dump", "Slave_IO", "Slave_SQL", "Slave_worker", "Daemon"):
            role = command
        elif user == "system user":
            role = f"system {command}"
        else:
            role = f"client {user}"
        names[int(tid)] = role
    return names


def _status(conn: pymysql.connections.Connection) -> dict[str, int]:
    with conn.cursor() as cursor:
        cursor.execute("SHOW GLOBAL STATUS")
        rows = dict(cursor.fetchall())
    return {name: int(rows.get(name, 0) or 0) for name in _STATUS}


def phase(
    settings: Settings,
    cluster: Any,
    keys: tuple[str, ...],
    *,
    scorer: bool,
    rate: float | None,
    duration: float,
    users: int,
) -> dict[str, Any]:
    if scorer:
        if running_pid(settings) is None:
            start_scorer(settings, timeout=300)
        _wait_caught_up(settings, 300.0, lambda message: print(message, file=sys.stderr))
    else:
        stop_scorer(settings)
    catch_up(cluster, IngestOptions(), lambda _: None)
    pids = {role: cluster.server(role).pid() for role in ("primary", "replica")}
    api_pid = ensure_api(settings, IngestOptions(users=users), lambda _: None)[0]
    groups = {"api": [api_pid, *children_of(api_pid)], **{r: [p] for r, p in pids.items()}}
    scorer_pid = running_pid(settings)
    if scorer_pid:
        groups["scorer"] = [scorer_pid]
    conns = {role: _connect(cluster, role) for role in pids}
    meter = CpuMeter(groups)
    before: dict[str, Any] = {}

    def on_window(begins: bool) -> None:
        snap = {
            role: {
                "threads": _threads(pid),
                "status": _status(conns[role]),
                "switches": _switches(pid),
            }
            for role, pid in pids.items()
        }
        if begins:
            meter.start()
            before.update(snap)
        else:
            meter.stop()
            before["after"] = snap

    report = run_load_sync(
        LoadConfig(
            url=api_url(settings),
            keys=keys,
            users=users,
            duration=duration,
            rate=rate,
            warmup=2.0,
        ),
        on_window=on_window,
    )
    ports = _scorer_ports() if scorer else set()
    result: dict[str, Any] = {
        "scorer": scorer,
        "rate": rate,
        "tps": round(report.to_dict()["tps"], 1),
        "load_average": os.getloadavg(),
    }
    cpu = meter.result(extra={"client": report.cpu_seconds})
    ok = report.to_dict()["ok"]
    result["cpu_us_per_tx"] = {
        name: round(1e6 * value / ok, 1) for name, value in cpu.items() if value is not None
    }
    result["cpu_seconds"] = cpu
    for role in pids:
        names = _names(conns[role], ports)
        after = before["after"][role]
        first = before[role]
        by_role: dict[str, float] = defaultdict(float)
        for tid, seconds in after["threads"].items():
            spent = seconds - first["threads"].get(tid, 0.0)
            if spent > 0:
                by_role[names.get(tid, "background")] += spent
        result[role] = {
            "threads_us_per_tx": {
                name: round(1e6 * spent / ok, 1)
                for name, spent in sorted(by_role.items(), key=lambda kv: -kv[1])
            },
            "status_per_tx": {
                name: round((after["status"][name] - first["status"][name]) / ok, 3)
                for name in _STATUS
            },
            "switches_per_tx": {
                kind: round((after["switches"][kind] - first["switches"][kind]) / ok, 2)
                for kind in ("voluntary", "nonvoluntary")
            },
        }
        conns[role].close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=None, help="open-loop rate (TPS)")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--order", default="off,on", help="phases of a round: off/on")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="LABEL=SQL run on the primary before each of its phases (SET GLOBAL ...; give "
        "every variant all the values it compares); repeat to interleave variants",
    )
    args = parser.parse_args()
    variants = [v.split("=", 1) for v in args.variant] or [["base", ""]]
    settings = Settings()
    cluster, _ = running_cluster(settings, lambda m: print(m, file=sys.stderr))
    keys = bench_keys(settings, count=args.users)
    phases = []
    load_before = os.getloadavg()
    for round_no in range(args.rounds):
        for label, sql in variants:
            if sql:
                conn = _connect(cluster, "primary")
                with conn.cursor() as cursor:
                    for statement in sql.split(";"):
                        if statement.strip():
                            cursor.execute(statement)
                conn.close()
            for which in args.order.split(","):
                print(f"round {round_no} {label} scorer {which}", file=sys.stderr)
                result = phase(
                    settings,
                    cluster,
                    keys,
                    scorer=which == "on",
                    rate=args.rate,
                    duration=args.duration,
                    users=args.users,
                )
                phases.append({"variant": label, "sql": sql, **result})
    stop_scorer(settings)
    json.dump(
        {"load_average_before": load_before, "args": vars(args), "phases": phases},
        sys.stdout,
        indent=1,
    )


if __name__ == "__main__":
    main()
