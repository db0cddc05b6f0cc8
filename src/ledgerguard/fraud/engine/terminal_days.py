"""The daily tables of every terminal a `TerminalHistory` is built from, computed in memory.

`terminal_days`: payments and confirmed frauds per (terminal, day) of a labelled frame;
`terminal_profile_days`: what the terminal's payments looked like each day (`PROFILE_COLUMNS`,
no label needed), the one implementation of the profile for every path (in memory here, page
by page on the replica in `fraud.terminal_profile`, kept up to date by the streaming scorer's
`realtime.terminal_counts`); `add_profiles` / `with_profile` put such tables together. The
replica's SQL reads the label counts itself (`fraud.terminal_tables`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ledgerguard.fraud.engine.customer_features import customer_features, customer_signal
from ledgerguard.fraud.engine.windows import (
    SECONDS_PER_DAY,
    UNITS_PER_USD,
    US_PER_SECOND,
    TimeAxis,
    sort_frame,
)
from ledgerguard.settings.fraud import FraudParameters

#: Optional daily columns of a `TerminalHistory` beyond `n_tx` / `n_fraud`: what the terminal's
#: payments looked like, known as soon as the day is over (no label needed). Made by
#: `terminal_profile_days` (in memory, or page by page on the replica) when
#: `terminal_profile_features` is on (see that setting).
PROFILE_COLUMNS = ("n_new", "n_usd", "sum_log_usd", "sumsq_log_usd", "n_signal")


def terminal_days(
    frame: pd.DataFrame, fraud_ids: np.ndarray, params: FraudParameters | None = None
) -> pd.DataFrame:
    """`TerminalHistory` input computed in memory (the pipeline asks the replica instead).

    With `params` whose `terminal_profile_features` is on, also the `PROFILE_COLUMNS` of
    `terminal_profile_days`.
    """
    days = (
        pd.DataFrame(
            {
                "terminal_id": frame["terminal_id"].to_numpy(),
                "day": frame["ts_us"].to_numpy() // (SECONDS_PER_DAY * US_PER_SECOND),
                "n_tx": np.ones(len(frame), dtype=np.int64),
                "n_fraud": np.isin(frame["transaction_id"].to_numpy(), fraud_ids).astype(np.int64),
            }
        )
        .query("terminal_id >= 0")
        .groupby(["terminal_id", "day"], as_index=False)[["n_tx", "n_fraud"]]
        .sum()
    )
    if params is None or not params.terminal_profile_features:
        return days
    return with_profile(days, terminal_profile_days(frame, params))


def terminal_profile_days(
    frame: pd.DataFrame, params: FraudParameters, *, first_day: int | None = None
) -> pd.DataFrame:
    """(terminal_id, day, n_tx, `PROFILE_COLUMNS`) of the payments of a frame of whole users.

    The one implementation of the terminal profile, for every path: in memory (training,
    `evaluate`) on the whole data, and on the replica page by page (`fraud.terminal_profile`):
    every column is a sum over the users' own rows — payments by customers new to the
    terminal (`customer_new_to_terminal`), sums of log(1 + USD) and of its square, and
    `n_signal` (`_signal_customers`) — so the sums of the pages' tables are the table of all
    users. `first_day` drops earlier days (a page's lookback rows complete the windows of the
    later ones but are counted by the page that covers their days).
    """
    data = sort_frame(frame)
    axis = TimeAxis(
        data["user_id"].to_numpy(),
        data["ts_us"].to_numpy(),
        max_window_s=int(params.lookback_days * SECONDS_PER_DAY),
    )
    customer = customer_features(data, axis, params)
    units = data["usd_units"].to_numpy()
    log_usd = np.log1p(np.maximum(units, 0) / UNITS_PER_USD)
    columns: dict[str, np.ndarray] = {
        "terminal_id": data["terminal_id"].to_numpy(),
        "day": data["ts_us"].to_numpy() // (SECONDS_PER_DAY * US_PER_SECOND),
        "n_tx": np.ones(len(data), dtype=np.int64),
        "n_new": (customer["customer_new_to_terminal"] == 1).astype(np.int64),
        "n_usd": (units >= 0).astype(np.int64),
        "sum_log_usd": np.where(units >= 0, log_usd, 0.0),
        "sumsq_log_usd": np.where(units >= 0, log_usd**2, 0.0),
    }
    signals = _signal_customers(columns, axis, customer_signal(customer, params), params)
    table = pd.DataFrame(columns)
    table = table[table["terminal_id"] >= 0]
    sums = ["n_tx", *(name for name in PROFILE_COLUMNS if name in table)]
    days = table.groupby(["terminal_id", "day"], as_index=False)[sums].sum()
    days = days.merge(signals, on=["terminal_id", "day"], how="outer")
    days = days.fillna(0).astype({name: np.int64 for name in PROFILE_INT_COLUMNS})
    if first_day is not None:
        days = days[days["day"] >= first_day]
    return days.reset_index(drop=True)


def _signal_customers(
    columns: dict[str, np.ndarray], axis: TimeAxis, signal: np.ndarray, params: FraudParameters
) -> pd.DataFrame:
    """(terminal_id, day, n_signal): customers of the terminal unusual elsewhere on that day.

    `n_signal` counts the customers who paid at the terminal in the `anomaly_window_days`
    before showing, on that day, a `customer_signal` at another terminal (rows of `columns`
    sorted by user, time). A skimmed card shows up as a spending anomaly elsewhere days before
    its fraud is labelled; several of a terminal's recent customers doing so point at the
    terminal. Each (customer, terminal, day) counts once.
    """
    terminal = columns["terminal_id"]
    rows = np.flatnonzero(signal & (terminal >= 0))
    lo, _ = axis.since(params.anomaly_window_days * SECONDS_PER_DAY, include_current=False)
    counts = rows - lo[rows]
    # every (signal row, earlier payment of the same customer within the window) pair: few
    # signal rows times a month of one customer's payments
    sig = np.repeat(rows, counts)
    starts = np.repeat(lo[rows] - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
    earlier = np.arange(len(sig)) + starts
    keep = (terminal[earlier] >= 0) & (terminal[earlier] != terminal[sig])
    pairs = pd.DataFrame(
        {
            "user": axis.rank[sig[keep]],
            "terminal_id": terminal[earlier[keep]],
            "day": columns["day"][sig[keep]],
        }
    ).drop_duplicates()
    return (
        pairs.groupby(["terminal_id", "day"], as_index=False)
        .size()
        .rename(columns={"size": "n_signal"})
    )


#: Columns of a profile table that are counts (the others are float sums).
PROFILE_INT_COLUMNS = ("terminal_id", "day", "n_tx", "n_new", "n_usd", "n_signal")


def add_profiles(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """Profile tables of disjoint sets of users added up per (terminal, day)."""
    table = pd.concat(tables, ignore_index=True)
    sums = ["n_tx", *PROFILE_COLUMNS]
    return table.groupby(["terminal_id", "day"], as_index=False)[sums].sum()


def with_profile(days: pd.DataFrame, profile: pd.DataFrame) -> pd.DataFrame:
    """Label-based daily counts (`n_tx`, `n_fraud`) joined with a profile table.

    Both count the same payments where both cover a day; each may cover days the other does
    not (labels are needed a delay back, the profile up to the interval's end), so `n_tx` is
    whichever is known.
    """
    merged = days.merge(profile, on=["terminal_id", "day"], how="outer", suffixes=("", "_p"))
    merged["n_tx"] = np.maximum(merged["n_tx"].fillna(0), merged["n_tx_p"].fillna(0))
    merged = merged.drop(columns="n_tx_p").fillna(0)
    return merged.astype({name: np.int64 for name in (*PROFILE_INT_COLUMNS, "n_fraud")})
