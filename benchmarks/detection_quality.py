"""Detection quality on the realistic generator: a thin wrapper of `ledgerguard bench detection`.

The logic lives in `ledgerguard.load.bench.detection` (its error analysis in
`ledgerguard.load.bench.detection_errors`); prefer the CLI command (same options,
defaults and JSON; `--seeds` and `--terminals-per-customer` there are repeated or
comma-separated). This script keeps the older command lines working:

    .venv/bin/python benchmarks/detection_quality.py --seeds 101 102 103 > quality.json
    .venv/bin/python benchmarks/detection_quality.py --seeds 301 \
        --set terminal_compromise_days=14 --set label_delay_days=3 > variant.json
    .venv/bin/python benchmarks/detection_quality.py --seeds 301 --terminal-profile > profile.json
    .venv/bin/python benchmarks/detection_quality.py --seeds 301 --param model_score=noisy_or \
        --param model_threshold_windows=1 > before.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ledgerguard.load.bench.ceiling import BenchError
from ledgerguard.load.bench.detection import (
    DetectionOptions,
    by_block,
    engine_overrides,
    generator_overrides,
    per_rule,
    run_detection,
)
from ledgerguard.load.bench.detection import run_seed as run
from ledgerguard.load.bench.detection_errors import errors, label_blind_share

__all__ = ["by_block", "errors", "label_blind_share", "main", "per_rule", "run"]


def main() -> None:
    defaults = DetectionOptions()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(defaults.seeds))
    parser.add_argument("--rows", type=int, default=defaults.rows)
    parser.add_argument("--days", type=int, default=defaults.days)
    parser.add_argument("--scored-days", type=int, default=defaults.scored_days)
    parser.add_argument(
        "--terminals-per-customer",
        type=float,
        nargs="+",
        default=list(defaults.terminals_per_customer),
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="generator parameter (SyntheticConfig field), e.g. terminal_compromise_days=14",
    )
    parser.add_argument(
        "--terminal-profile",
        action="store_true",
        help="turn on the terminal profile features (new-customer share, amount z-score)",
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="engine parameter (FraudParameters field), e.g. model_score=noisy_or",
    )
    parser.add_argument(
        "--dump-errors",
        type=Path,
        metavar="DIR",
        help="write the misses and false alarms of rules + model per run to DIR as CSV",
    )
    args = parser.parse_args()
    try:
        options = DetectionOptions(
            seeds=tuple(args.seeds),
            rows=args.rows,
            days=args.days,
            scored_days=args.scored_days,
            terminals_per_customer=tuple(args.terminals_per_customer),
            overrides=generator_overrides(args.set),
            terminal_profile=args.terminal_profile,
            engine=engine_overrides(args.param),
            dump_errors=args.dump_errors,
        )
    except BenchError as exc:
        parser.error(str(exc))
    report = run_detection(options, progress=lambda line: print(line, file=sys.stderr))
    json.dump(report, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
