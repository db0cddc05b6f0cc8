"""The memory of the streaming scorer's online state alone, for `bench realtime`.

The state of `users` users with `rows_per_user` rows each in their windows is built in a fresh
(spawned) process from synthetic rows, and that process reports its peak RSS before and after:
the scorer's own RSS mixes the state with the binlog client, the model and the pools, and a
figure measured in the benchmark's process would include the load generator. Apart from
`bench realtime` because it needs no cluster: only the fraud engine's state classes.
"""

from __future__ import annotations

import multiprocessing
import resource
import time
from typing import Any

import numpy as np


def _state_child(users: int, rows_per_user: int, out: Any) -> None:
    """In a fresh process: build the state of `users` users, report RSS before and after."""
    import pandas as pd

    from ledgerguard.fraud.engine.windows import TX_DTYPES
    from ledgerguard.money import FxRates
    from ledgerguard.realtime.partition import Partition
    from ledgerguard.realtime.state import OnlineState
    from ledgerguard.realtime.terminal_counts import TerminalCounts
    from ledgerguard.settings.fraud import FraudParameters

    params = FraudParameters()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    state = OnlineState(
        params,
        partition=Partition(),
        terminals=TerminalCounts.empty(params),
        fx=FxRates(),
    )
    now_us = int(time.time() * 1e6)
    rng = np.random.default_rng(7)
    chunk = 200_000
    began = time.monotonic()
    for first in range(0, users, chunk):
        n = min(chunk, users - first) * rows_per_user
        user_ids = np.repeat(np.arange(first, min(first + chunk, users)), rows_per_user)
        frame = pd.DataFrame(
            {
                "transaction_id": np.arange(first * rows_per_user, first * rows_per_user + n),
                "user_id": user_ids,
                "terminal_id": rng.integers(0, 100_000, n),
                "ts_us": now_us - rng.integers(0, 20 * 86_400 * 10**6, n),
                "amount_units": rng.integers(10_000, 5_000_000, n),
                "usd_units": rng.integers(10_000, 5_000_000, n),
                "currency": "USD",
            }
        ).astype(TX_DTYPES)
        state.load(frame)
        del frame
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out.put(
        {
            "users": state.users,
            "transactions": state.transactions,
            "build_seconds": round(time.monotonic() - began, 1),
            "rss_before_mib": round(before / 1024, 1),
            "peak_rss_mib": round(after / 1024, 1),
        }
    )


def measure_state_memory(users: int, rows_per_user: int) -> dict[str, Any]:
    """Peak RSS of a process holding `users` users' windows (`rows_per_user` rows each)."""
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    child = context.Process(target=_state_child, args=(users, rows_per_user, out))
    child.start()
    result = out.get(timeout=1800)
    child.join(timeout=60)
    return result
