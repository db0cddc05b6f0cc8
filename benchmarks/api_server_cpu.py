"""CPU per POST /transactions of the running API server (Gunicorn workers), at a fixed rate.

`ledgerguard bench ingest` measures at saturation, where the batch size (rows per COMMIT) follows
the throughput and moves CPU per request as much as code does; on a shared machine two versions
then differ by their luck more than by their code. This offers the same open-loop rate to the
API already running (`ledgerguard api start`, from the folder whose `.env` names it) and reads
the workers' CPU (`/proc`, utime + stime) over the measured window, so two versions of the code
are compared doing the same work. Alternate the versions (`ledgerguard api stop; PYTHONPATH=
<other>/src ledgerguard api start`) and repeat: the machine is shared (issue #13, session 8).

    .venv/bin/python benchmarks/api_server_cpu.py --rate 1200 --duration 15 > run.json

JSON on stdout: API workers' and the client's CPU µs per request, rows per COMMIT, how the
client's connections are spread over the workers, the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1200.0, help="requests per second offered")
    parser.add_argument("--users", type=int, default=50, help="connections")
    parser.add_argument("--duration", type=float, default=15.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds first")
    parser.add_argument("--tag", default="", help="a label copied into the report")
    args = parser.parse_args()

    from ledgerguard.api.server import running_pid
    from ledgerguard.cluster.local import LocalCluster
    from ledgerguard.load.bench.ingest import (
        bench_keys,
        machine_info,
        per_transaction,
        rows_per_commit,
    )
    from ledgerguard.load.bench.procstat import CpuMeter, children_of, connections_per_process
    from ledgerguard.load.bench.servers import semi_sync_during, semi_sync_status
    from ledgerguard.load.runner import LoadConfig, run_load_sync
    from ledgerguard.settings import Settings

    settings = Settings()
    master = running_pid(settings)
    if master is None:
        raise SystemExit("the API is not running: `ledgerguard api start` first")
    workers = children_of(master)
    cluster = LocalCluster(settings)
    primary, root = cluster.specs["primary"], cluster.root_password
    keys = bench_keys(settings, count=args.users)
    load_before = os.getloadavg()
    meter = CpuMeter({"api": workers})
    spread: dict[int, int] = {}

    def window(begins: bool) -> None:
        if begins:
            meter.start()
        else:
            meter.stop()
            spread.update(connections_per_process(workers, settings.api_port))

    config = LoadConfig(
        url=f"http://{settings.api_host}:{settings.api_port}",
        keys=keys,
        users=args.users,
        duration=args.duration,
        warmup=args.warmup,
        rate=args.rate,
    )
    semi_before = semi_sync_status(primary, root_password=root)
    report = run_load_sync(config, on_window=window)
    semi = semi_sync_during(semi_before, semi_sync_status(primary, root_password=root)) or {}
    cpu = meter.result(extra={"client": report.cpu_seconds})
    out: dict[str, Any] = {
        "benchmark": "api server CPU per POST /transactions at a fixed rate",
        "tag": args.tag,
        "rate_target": args.rate,
        "users": args.users,
        "duration_s": args.duration,
        "ok": report.ok,
        "errors": report.errors,
        "missed": report.missed,
        "tps": round(report.tps, 1),
        "latency_ms": report.latency.summary_ms((50.0, 99.0)),
        "cpu_seconds": cpu,
        "cpu_us_per_request": per_transaction(cpu, report.ok),
        "rows_per_commit": rows_per_commit(report.ok, semi),
        "connections_per_worker": list(spread.values()),
        "machine": machine_info(load_before),
    }
    json.dump(out, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
