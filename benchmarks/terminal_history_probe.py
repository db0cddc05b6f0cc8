"""Seconds and memory of the terminal history over look-backs of N days, on a loaded data set.

Run it from the directory whose `.env` points at a cluster holding `bench analysis`' data set:

    .venv/bin/python benchmarks/terminal_history_probe.py 14 28 42 54

Why: every path (nightly run, backtest, scorer snapshot) reads the terminal history back
`FraudParameters.terminal_read_days` before the interval it scores (97 days by default since
`terminal_compromise_history_days` went from 60 to 90). `bench analysis` cannot show what a
longer look-back costs: its analysed interval starts 30 days into a 60-day data set, so it
reads the whole set whatever the setting. This reads the history (the replica's two grouped
queries and the `TerminalHistory` built on them) over spans of N days ending at the data's
last labelled day, so the cost of a day of look-back at the data set's daily volume is the
slope between spans. Prints one JSON list; a line per span on stderr as it goes.
"""

from __future__ import annotations

import gc
import json
import resource
import sys
import time
from datetime import UTC, timedelta

import sqlalchemy as sa

from ledgerguard.db.engines import analytics_engine
from ledgerguard.fraud.engine.terminal_history import TerminalHistory
from ledgerguard.fraud.reader import ReplicaReader
from ledgerguard.settings import Settings
from ledgerguard.utc import utc_midnight

#: The data's newest days whose labels the nightly run of its last day could not read yet.
LABEL_DELAY_DAYS = 7


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def main(spans: list[int]) -> None:
    settings = Settings()
    results = []
    engine = analytics_engine(settings)
    with engine.connect() as conn:
        last = conn.execute(sa.text("SELECT MAX(occurred_at) FROM transactions")).scalar_one()
    engine.dispose()
    if last is None:
        sys.exit("the replica holds no transactions: load `bench analysis`' data set first")
    with ReplicaReader(settings) as replica:
        until = utc_midnight(last.replace(tzinfo=UTC)) - timedelta(days=LABEL_DELAY_DAYS - 1)
        for span in spans:
            gc.collect()
            before = _rss_mib()
            began = time.perf_counter()
            days, frauds = replica.terminal_tables(since=until - timedelta(days=span), until=until)
            read = time.perf_counter() - began
            history = TerminalHistory(days, frauds)
            results.append(
                {
                    "span_days": span,
                    "terminal_days": len(days),
                    "fraud_customer_rows": len(frauds),
                    "seconds_read": round(read, 2),
                    "seconds_with_history": round(time.perf_counter() - began, 2),
                    "rss_growth_mib": round(_rss_mib() - before, 1),
                }
            )
            print(results[-1], file=sys.stderr, flush=True)
            del days, frauds, history
    print(json.dumps(results))


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or [14, 28, 42, 54])
