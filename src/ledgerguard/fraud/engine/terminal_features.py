"""What a terminal's labelled history says about a payment on it.

The Handbook's terminal windows with the label delay, the recency of the terminal's confirmed
fraud and its current run of fraud days, P(that compromise still goes on at the payment's
day) (`engine.survival`), and with the profile its recent customers and amounts
(`engine.features` has the catalogue). Only labels up to each row's label horizon are read,
but for the frauds after it whose labels came early (`EARLY_FRAUD_CUSTOMERS`).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from ledgerguard.fraud.engine.survival import CompromiseDurations
from ledgerguard.fraud.engine.terminal_days import PROFILE_COLUMNS
from ledgerguard.fraud.engine.terminal_history import EarlyFrauds, TerminalHistory
from ledgerguard.fraud.engine.windows import (
    SECONDS_PER_DAY,
    UNITS_PER_USD,
    US_PER_SECOND,
    order_by,
    unsort,
)
from ledgerguard.fraud.errors import FraudAnalysisError
from ledgerguard.settings.fraud import FraudParameters


def terminal_features(
    frame: pd.DataFrame, history: TerminalHistory, params: FraudParameters
) -> dict[str, np.ndarray]:
    """Handbook `terminal_nb_tx_<w>d` / `terminal_risk_<w>d` with the label delay.

    The lookups run on the rows sorted by (terminal, day), so consecutive binary searches in the
    history land near each other: about 7x faster than in user order (1.4 s of a 2.1 s page of
    400k rows against a 3M-entry history went into cache-missing searches).
    """
    order = order_by(frame["terminal_id"].to_numpy(), frame["ts_us"].to_numpy())
    terminal = frame["terminal_id"].to_numpy()[order]
    day = frame["ts_us"].to_numpy()[order] // (SECONDS_PER_DAY * US_PER_SECOND)
    out: dict[str, np.ndarray] = {}
    for days in params.terminal_feature_windows:
        n_tx, n_fraud = history.window(terminal, day, days=days, lag=params.label_delay_days)
        out[f"terminal_nb_tx_{days}d"] = unsort(n_tx, order)
        out[f"terminal_nb_fraud_{days}d"] = unsort(n_fraud, order)
        with np.errstate(invalid="ignore", divide="ignore"):
            risk = np.where(n_tx > 0, n_fraud / n_tx, 0.0)
        out[f"terminal_risk_{days}d"] = unsort(risk, order)
    # fraud after the horizon that is confirmed already (an analyst's decision): evidence now
    early = history.early_frauds(
        terminal, day, frame["user_id"].to_numpy()[order], days=params.early_label_days
    )
    out[EARLY_FRAUD_CUSTOMERS] = unsort(early.customers, order)
    # The recency features depend on (terminal, day) only: computed once per pair (a page holds
    # several payments per terminal and day), then spread to the rows.
    first = np.ones(len(terminal), dtype=bool)
    first[1:] = (terminal[1:] != terminal[:-1]) | (day[1:] != day[:-1])
    pair = np.cumsum(first) - 1
    recency = _terminal_recency(terminal[first], day[first], history, params)
    if params.terminal_profile_features and not history.has_profile:
        raise FraudAnalysisError(
            "LEDGERGUARD_FRAUD__TERMINAL_PROFILE_FEATURES is on, but this terminal history has no "
            "profile: build it with fraud.terminal_profile (replica) or terminal_days(params)"
        )
    if history.has_profile:
        recency |= _terminal_profile(terminal[first], day[first], history, params)
    out |= {name: unsort(values[pair], order) for name, values in recency.items()}
    run = recency["terminal_fraud_run_days"][pair]
    out[EARLY_ACTIVE_PROBABILITY] = unsort(_early_activity(early, day, run, history, params), order)
    if history.has_profile:
        out |= _terminal_amount_zscore(frame, out, params)
    return out


#: Smallest standard deviation of a terminal's log amounts used in the z-score: a shop whose
#: payments all cost the same would otherwise make a one-cent difference look extreme.
MIN_LOG_STD = 0.1


def _terminal_profile(
    terminal: np.ndarray, day: np.ndarray, history: TerminalHistory, params: FraudParameters
) -> dict[str, np.ndarray]:
    """The terminal's payments of the `terminal_profile_days` days before the transaction's day.

    Known as soon as those days are over (no label needed), so a terminal starts to look
    unusual on the first day after a compromise begins, not a label delay later.
    """
    p = params.terminal_profile_days
    n_tx, n_new, n_usd, total, squares, n_signal = history.sums(
        ("n_tx", *PROFILE_COLUMNS), terminal, day, days=p, lag=1
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n_usd > 0, total / n_usd, np.nan)
        variance = np.where(n_usd > 1, (squares - n_usd * mean**2) / (n_usd - 1), np.nan)
        return {
            f"terminal_profile_nb_tx_{p}d": n_tx,
            f"terminal_new_customer_share_{p}d": np.where(n_tx > 0, n_new / n_tx, np.nan),
            f"terminal_signal_customers_{p}d": n_signal,
            "terminal_log_amount_mean": mean,
            "terminal_log_amount_std": np.sqrt(np.maximum(variance, MIN_LOG_STD**2)),
        }


def _terminal_amount_zscore(
    frame: pd.DataFrame, out: dict[str, np.ndarray], params: FraudParameters
) -> dict[str, np.ndarray]:
    """How unusual the amount is *for the terminal*: z-score of log(1 + USD) (NaN: no baseline)."""
    units = frame["usd_units"].to_numpy()
    log_usd = np.where(units >= 0, np.log1p(np.maximum(units, 0) / UNITS_PER_USD), np.nan)
    p = params.terminal_profile_days
    enough = out[f"terminal_profile_nb_tx_{p}d"] >= 2
    std = out.pop("terminal_log_amount_std")
    z = (log_usd - out["terminal_log_amount_mean"]) / std
    return {"terminal_amount_zscore": np.where(enough, z, np.nan)}


def _terminal_recency(
    terminal: np.ndarray, day: np.ndarray, history: TerminalHistory, params: FraudParameters
) -> dict[str, np.ndarray]:
    """Recent risk, days since fraud and fraud-run length over the labelled days (see catalogue).

    Age 0 is the label horizon (the day `label_delay_days` before the transaction's), age
    `terminal_history_days - 1` the oldest (a run of fraud reaching it is read on, over
    `terminal_compromise_history_days`: round 12 of #14). The history entries of each
    (terminal, day) pair's horizon are gathered at once (two binary searches for every pair,
    then one flat array of at most `horizon` entries per pair) and reduced per pair; a one-day
    lookup per age (84 binary searches per pair) cost the streaming scorer about a third of its
    scoring CPU. Days without an entry have no payment: they neither end a fraud run nor count
    as clean. Pairs go `RECENCY_CHUNK` at a time, so a nightly page's gathered entries stay a
    few MiB.
    """
    if len(terminal) <= RECENCY_CHUNK:
        return _recency_chunk(terminal, day, history, params)
    parts = [
        _recency_chunk(terminal[i : i + RECENCY_CHUNK], day[i : i + RECENCY_CHUNK], history, params)
        for i in range(0, len(terminal), RECENCY_CHUNK)
    ]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


#: (terminal, day) pairs per gathering pass of `_terminal_recency` (at most `horizon` entries
#: each: 16k pairs x 28 days x ~8 arrays of 8 bytes = ~30 MiB at the worst).
RECENCY_CHUNK = 16_384


def _recency_chunk(
    terminal: np.ndarray, day: np.ndarray, history: TerminalHistory, params: FraudParameters
) -> dict[str, np.ndarray]:
    n = len(terminal)
    horizon = params.terminal_history_days
    decay = 0.5 ** (1 / params.terminal_risk_half_life_days)
    newest = day - params.label_delay_days  # the label horizon: the history day of age 0
    owner, entry_day, n_tx, n_fraud = history.entries(
        ("n_tx", "n_fraud"), terminal, first=newest - horizon + 1, stop=newest + 1
    )
    age = newest[owner] - entry_day
    weight = decay**age
    weighted_tx = np.bincount(owner, weights=weight * n_tx, minlength=n)
    weighted_fraud = np.bincount(owner, weights=weight * n_fraud, minlength=n)
    fraud = n_fraud > 0
    since_fraud = np.full(n, horizon, dtype=np.int64)
    np.minimum.at(since_fraud, owner[fraud], age[fraud])
    run, run_tx, run_fraud, reaches_start = _current_run(owner, age, n_tx, n_fraud, n, horizon)
    # A run with no clean day in the window may be older than the window: read it back over
    # the days the compromise lengths are learnt from, or a 56-day compromise would look 28
    # days old for ever and the survival estimate would never see it outlast what it learnt.
    # Only those few rows pay for the longer read (the window above is the hot path); it
    # gathers their window again, simpler than joining two spans' partial runs.
    lookback = params.terminal_compromise_history_days
    rows = np.flatnonzero(reaches_start)
    if lookback > horizon and len(rows):
        o, o_day, o_tx, o_fraud = history.entries(
            ("n_tx", "n_fraud"),
            terminal[rows],
            first=newest[rows] - lookback + 1,
            stop=newest[rows] + 1,
        )
        longer = _current_run(o, newest[rows][o] - o_day, o_tx, o_fraud, len(rows), lookback)
        run[rows], run_tx[rows], run_fraud[rows] = longer[:3]
    with np.errstate(invalid="ignore", divide="ignore"):
        recent = np.where(weighted_tx > 0, weighted_fraud / weighted_tx, 0.0)
        run_share = np.where(run_tx > 0, run_fraud / run_tx, 0.0)
    return {
        "terminal_recent_risk": recent,
        "terminal_run_fraud_share": run_share,
        "terminal_days_since_fraud": since_fraud,
        "terminal_fraud_run_days": run,
    } | _compromise_activity(terminal, run, since_fraud, newest, history, params)


def _current_run(
    owner: np.ndarray,
    age: np.ndarray,
    n_tx: np.ndarray,
    n_fraud: np.ndarray,
    n: int,
    days: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The run of fraud days from the horizon (age 0) back, per query, over `days` days of
    entries (query index `owner`, `age` in days): (its length in days, its payments, its
    frauds, whether no clean day ended it inside the `days`). A day with payments and no
    fraud ends it; days without payments neither end nor extend it."""
    fraud = n_fraud > 0
    clean = ~fraud & (n_tx != 0)
    first_clean = np.full(n, days, dtype=np.int64)
    np.minimum.at(first_clean, owner[clean], age[clean])
    in_run = fraud & (age < first_clean[owner])
    run = np.zeros(n, dtype=np.int64)
    np.maximum.at(run, owner[in_run], age[in_run] + 1)
    run_tx = np.bincount(owner[in_run], weights=n_tx[in_run], minlength=n)
    run_fraud = np.bincount(owner[in_run], weights=n_fraud[in_run], minlength=n)
    return run, run_tx, run_fraud, (run > 0) & (first_clean == days)


def _compromise_activity(
    terminal: np.ndarray,
    run: np.ndarray,
    since_fraud: np.ndarray,
    newest: np.ndarray,
    history: TerminalHistory,
    params: FraudParameters,
) -> dict[str, np.ndarray]:
    """P(the terminal's run of fraud still goes on at the transaction's day), and in words.

    The run is known to have lasted from its first to its last fraud day (`run - since_fraud`
    days); it is still going on the transaction's day if it lasts `run + label_delay_days`
    days (its first day to the transaction's, both included). 0 without an ongoing run (no
    compromise known) or with one in which fewer than `terminal_compromise_min_customers`
    distinct customers had confirmed fraud (one customer's fraud days, a stolen card at its
    owner's shop, are no compromise; the learnt lengths count the same runs only), 1 (and no
    words) with one but fewer than `terminal_compromise_min_runs` ended runs to learn from.
    Never NaN: a model feature that is NaN on every row of a training set is refused by the
    tree model's binning.
    """
    ongoing = run > 0
    if params.terminal_compromise_min_customers > 1 and ongoing.any():
        # a run of one customer's fraud (a stolen card at its owner's shop) is no compromise
        rows = np.flatnonzero(ongoing)
        customers = history.run_customers(
            terminal[rows], first=newest[rows] - run[rows] + 1, stop=newest[rows] + 1
        )
        ongoing[rows[customers < params.terminal_compromise_min_customers]] = False
    probability = ongoing.astype(np.float64)
    words = np.full(len(run), None, dtype=object)
    for rows, durations in _learnt_lengths(ongoing, newest, history, params):
        probability[rows] = durations.active_probability(
            run[rows] - since_fraud[rows], run[rows] + params.label_delay_days
        )
        words[rows] = durations.words()
    return {ACTIVE_PROBABILITY: probability, COMPROMISE_WORDS: words}


def _learnt_lengths(
    asked: np.ndarray, newest: np.ndarray, history: TerminalHistory, params: FraudParameters
) -> Iterator[tuple[np.ndarray, CompromiseDurations]]:
    """(rows, the compromise lengths learnt by their label horizon) for the `asked` rows, one
    estimate per horizon day (a loop over the few distinct days, not over rows); none where
    fewer than `terminal_compromise_min_runs` compromises ended or the look-back is 0."""
    lookback = params.terminal_compromise_history_days
    if lookback == 0 or not asked.any():
        return
    for horizon in np.unique(newest[asked]).tolist():
        durations = history.compromise_durations(
            horizon,
            lookback,
            min_share=params.terminal_risk_threshold,
            min_customers=params.terminal_compromise_min_customers,
        )
        if durations.completed >= params.terminal_compromise_min_runs:
            yield asked & (newest == horizon), durations


def _early_activity(
    early: EarlyFrauds,
    day: np.ndarray,
    run: np.ndarray,
    history: TerminalHistory,
    params: FraudParameters,
) -> np.ndarray:
    """P(the compromise that other customers' early confirmed frauds show at the terminal
    still goes on at the transaction's day).

    Early labels say the terminal was compromised on the days of those payments, not that it
    still is: right after a compromise ends its last days' labels still come in, and a count of
    them alone flagged the terminal's next customers (session 20: 376 of the 435 false alarms
    of the count rule at 2 customers on dev seed 12 at 0.5 terminals per customer, 30 % early
    labels, came 0-6 days after a compromise's end). The compromise began at the start of the
    labelled run of fraud days that reaches the label horizon, if there is one, else at the
    first early confirmed fraud; it is known to have lasted to the last one. The learnt
    compromise lengths (`engine.survival`, the same estimate as the labelled run's) give the
    chance that it lasts to the transaction's day. 0 without early confirmed fraud, 1 with too
    few ended compromises to learn from.
    """
    has = early.customers > 0
    probability = has.astype(np.float64)
    newest = day - params.label_delay_days
    start = np.where(run > 0, newest - run + 1, early.first_day)
    for rows, durations in _learnt_lengths(has, newest, history, params):
        probability[rows] = durations.active_probability(
            early.last_day[rows] - start[rows] + 1, day[rows] - start[rows] + 1
        )
    return probability


#: Other customers whose payments at the terminal after the label horizon are confirmed fraud
#: already (`TerminalHistory.early_fraud_customers`).
EARLY_FRAUD_CUSTOMERS = "terminal_early_fraud_customers"


#: P(the terminal's compromise still goes on at the transaction's day), see `engine.survival`.
ACTIVE_PROBABILITY = "terminal_compromise_active_probability"

#: The same for the compromise that early confirmed frauds show (`_early_activity`).
EARLY_ACTIVE_PROBABILITY = "terminal_early_active_probability"


#: The learnt compromise lengths in words for the reason (text: not a model feature).
COMPROMISE_WORDS = "terminal_compromise_lengths"
