"""The streaming scorer's state + score CPU per transaction, offline: `bench scorer-cpu`'s data
replayed in memory through `OnlineState.score`.

No cluster: `users` users get `history_rows` transactions each over the last 20 days (the
bench's own generator, `load.bench.scorer_cpu._rows`, uniform or `--skewed` users), loaded
into the state as at start-up, with a terminal history in which `--frauds` of them are
confirmed frauds; then `transactions` new ones (spread over 60 s, in the bench's insert order)
go through `count_transactions` + `OnlineState.score` in batches of `batch_rows`, the thread's
CPU (`time.thread_time`) summed over those calls. `bench scorer-cpu`'s decode, parse and write
stages are not here: what moves with the state's code is measured alone, which the bench
cannot resolve on a busy machine.

Another version of the code on the same venv (it needs only `OnlineState`, `TerminalCounts`,
`frame_of_inserts` and the bench's generator, read from `realtime.state` in a tree from before
that module's split):

    .venv/bin/python benchmarks/scorer_state_replay.py --skewed > after.json
    PYTHONPATH=<other tree>/src .venv/bin/python benchmarks/scorer_state_replay.py --skewed

`--full` re-scores every row of the revision window (`OnlineState(bounded=False)`, this
code only). The report carries a digest of every verdict row (ids, scores, flags, rule ids,
reasons): two runs with the same digest gave the same verdicts. JSON on stdout.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any


def run(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    import ledgerguard
    from ledgerguard.fraud.engine.terminal_days import terminal_days
    from ledgerguard.fraud.engine.terminal_history import fraud_customer_days
    from ledgerguard.load.bench import scorer_cpu
    from ledgerguard.load.bench.scorer_cpu import ScorerCpuOptions, _rows
    from ledgerguard.money import FxRates
    from ledgerguard.realtime.state import OnlineState

    try:
        from ledgerguard.realtime.partition import Partition
        from ledgerguard.realtime.rows import frame_of_inserts
        from ledgerguard.realtime.terminal_counts import TerminalCounts
    except ImportError:  # a tree from before `realtime.state` was split into these modules
        from ledgerguard.realtime.state import (  # type: ignore[attr-defined,no-redef]
            Partition,
            TerminalCounts,
            frame_of_inserts,
        )
    from ledgerguard.settings.fraud import FraudParameters

    options = ScorerCpuOptions(
        transactions=args.transactions,
        users=args.users,
        history_rows=args.history_rows,
        batch_rows=args.batch_rows,
        seed=args.seed,
        skewed=args.skewed,
    )
    rng = np.random.default_rng(options.seed)
    now = datetime(2026, 11, 29, 12, tzinfo=UTC)
    user_base = 6_000_000_000
    history = scorer_cpu.history_rows(rng, options, user_base, now=now)
    stream = _rows(rng, options, user_base, options.transactions, spread_s=60, now=now)
    for number, row in enumerate([*history, *stream], start=1):
        row["id"] = number
    past = frame_of_inserts(history)
    frauds = past["transaction_id"].to_numpy()[rng.random(len(past)) < args.frauds]
    params = FraudParameters()
    extra = {"bounded": False} if args.full else {}
    state = OnlineState(
        params,
        partition=Partition(),
        terminals=TerminalCounts(
            terminal_days(past, frauds), params, frauds=fraud_customer_days(past, frauds)
        ),
        fx=FxRates(),
        **extra,
    )
    state.load(past)
    digest = hashlib.sha256()
    cpu = 0.0
    verdicts = revised = 0
    for first in range(0, len(stream), options.batch_rows):
        frame = frame_of_inserts(stream[first : first + options.batch_rows])
        began = time.thread_time()
        state.count_transactions(frame)
        batch = state.score(frame)
        cpu += time.thread_time() - began
        verdicts += len(batch.rows)
        revised += len(batch.revised_ids)
        digest.update(pd.util.hash_pandas_object(batch.rows, index=False).to_numpy().tobytes())
    return {
        "code": os.path.dirname(ledgerguard.__file__),
        "variant": "full" if args.full else "default",
        "skewed": options.skewed,
        "seed": options.seed,
        "users": options.users,
        "history_rows": options.history_rows,
        "transactions": options.transactions,
        "batch_rows": options.batch_rows,
        "frauds": args.frauds,
        "state_score_us_per_transaction": round(cpu / len(stream) * 1e6, 1),
        "scored_rows": getattr(state, "scored_rows", None),
        "verdicts_written": verdicts,
        "revisions": revised,
        "verdict_digest": digest.hexdigest()[:16],
        "kept_transactions": state.transactions,
        "load_average": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skewed", action="store_true")
    parser.add_argument("--full", action="store_true", help="re-score every revisable row")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--history-rows", type=int, default=10)
    parser.add_argument("--transactions", type=int, default=20_000)
    parser.add_argument("--batch-rows", type=int, default=300)
    parser.add_argument("--frauds", type=float, default=0.01, help="share of history frauds")
    json.dump(run(parser.parse_args()), sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
