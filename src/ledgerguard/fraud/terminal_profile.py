"""The terminal history of a replica run, with the terminal profile when it is on.

The label-based daily counts come from the `(terminal_id, occurred_at)` index
(`ReplicaReader.terminal_tables`). The profile (`terminal_days.PROFILE_COLUMNS`: customers
new to the terminal, the terminal's amounts, its recent customers unusual elsewhere) needs each
payment with its customer's own history, which is exactly what a page of users holds: it is
computed by `terminal_days.terminal_profile_days` — the function training and the
evaluation call on data in memory — page by page over the covering `(user_id, occurred_at,
...)` index the nightly pages already read, and the pages' tables are added up (every profile
column is a sum over users).

No new index: listing payments per terminal with customer and amount would have needed a
fourth secondary index on `transactions` (paid on every insert), and would still not give
`n_signal`, which needs each customer's spending baseline. The price is a second pass over the
users before scoring (the profile of day d needs every user's payments of the days before d),
always over *all* users, also for a bucketed run or a scorer partition.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

from ledgerguard.fraud.engine.fx import fill_missing_usd
from ledgerguard.fraud.engine.terminal_days import add_profiles, terminal_profile_days, with_profile
from ledgerguard.fraud.engine.terminal_history import TerminalHistory
from ledgerguard.fraud.engine.windows import SECONDS_PER_DAY, TX_DTYPES
from ledgerguard.fraud.reader import Progress, ReplicaReader
from ledgerguard.money import FxRates
from ledgerguard.settings.fraud import FraudParameters
from ledgerguard.utc import utc_midnight

#: Pages' profile tables are added up every this many pages, so the partial tables alive stay
#: a few (each holds the (terminal, day) pairs its users touched).
_FOLD_EVERY = 8


def replica_terminal_history(
    replica: ReplicaReader,
    params: FraudParameters,
    *,
    since: datetime,
    until: datetime,
    start: datetime,
    end: datetime,
    fx: FxRates,
    progress: Progress | None = None,
) -> TerminalHistory:
    """Label-based counts of days [since, until) (and the frauds up to `end` confirmed early)
    and, with `terminal_profile_features`, the profile of the days payments in [start, end)
    look back on."""
    days, frauds = replica.terminal_tables(since=since, until=until, frauds_until=end)
    if not params.terminal_profile_features:
        return TerminalHistory(days, frauds)
    profile = replica_profile_days(
        replica,
        params,
        since=utc_midnight(start) - timedelta(days=params.terminal_profile_days),
        until=end,
        fx=fx,
        progress=progress,
    )
    return TerminalHistory(with_profile(days, profile), frauds)


def replica_profile_days(
    replica: ReplicaReader,
    params: FraudParameters,
    *,
    since: datetime,
    until: datetime,
    fx: FxRates,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """`terminal_profile_days` of every user's payments in [since, until), page by page.

    Each page also holds its users' `lookback_days` before `since`, so the customer windows
    (new to the terminal, spending baseline, bursts) of the first days are complete.
    """
    first_day = int(since.timestamp()) // SECONDS_PER_DAY
    folded: list[pd.DataFrame] = []
    for frame in replica.pages(
        since=since - timedelta(days=params.lookback_days),
        until=until,
        page_rows=params.page_rows,
        progress=progress,
    ):
        profile = terminal_profile_days(fill_missing_usd(frame, fx), params, first_day=first_day)
        folded.append(profile)
        del frame, profile
        if len(folded) >= _FOLD_EVERY:
            folded = [add_profiles(folded)]
    if not folded:
        empty = pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in TX_DTYPES.items()})
        return terminal_profile_days(empty, params)
    return add_profiles(folded)
