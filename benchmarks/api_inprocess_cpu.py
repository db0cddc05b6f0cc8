"""CPU per POST /transactions of the API app alone: a thin wrapper of `ledgerguard bench api-cpu`.

The logic lives in `ledgerguard.load.bench.api_cpu`; prefer the CLI command (same figures and
JSON). This script keeps the older command lines working (from the folder whose `.env` names the
cluster):

    .venv/bin/python benchmarks/api_inprocess_cpu.py --requests 10000 > fast.json
    .venv/bin/python benchmarks/api_inprocess_cpu.py --requests 10000 --no-fast-path > route.json

To measure code older than the bench module, run that commit's own copy of this script.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ledgerguard.errors import LedgerGuardError
from ledgerguard.load.bench.api_cpu import ApiCpuOptions, run_api_cpu
from ledgerguard.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000, help="measured requests")
    parser.add_argument("--users", type=int, default=50, help="concurrent callers")
    parser.add_argument("--no-fast-path", action="store_true", help="every request via the route")
    parser.add_argument("--key-file", type=Path, help="API keys, one a line (default: bench's)")
    parser.add_argument(
        "--count-calls",
        action="store_true",
        help="also count function calls per request (sys.setprofile: CPU figures then mean little)",
    )
    args = parser.parse_args()
    options = ApiCpuOptions(
        requests=args.requests,
        users=args.users,
        fast_path=not args.no_fast_path,
        key_file=args.key_file,
        count_calls=args.count_calls,
    )
    try:
        report = run_api_cpu(
            Settings(), options, progress=lambda line: print(line, file=sys.stderr)
        )
    except LedgerGuardError as exc:
        raise SystemExit(f"error: {exc}") from None
    json.dump(report, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
