"""Vectorised features of the fraud engine, named like the Fraud Detection Handbook.

Input is a *transaction frame* (`windows.TX_DTYPES`): one row per transaction of the users being
analysed, covering the analysed interval plus a lookback period, so trailing windows of the
first transactions of the interval are complete. `build_features` is the one entry point; the
work lives by what it reads: `windows` (the frame's order and the per-user windows every
feature is built from), `customer_features` (a customer's own payments, no label),
`terminal_history` (the daily per-terminal counts every path shares, made in memory by
`terminal_days`, and the fraud-customer table) and `terminal_features` (what that labelled history says about a payment, with
`survival`'s P(a compromise still goes on)).

Feature catalogue (`w` ranges over the windows in `FraudParameters`):

| output                          | source column(s)                 | transformation |
|---------------------------------|----------------------------------|----------------|
| `amount_usd`                    | `transactions.amount_usd` (or `amount`, `currency`, date via ECB rates when NULL) | float USD; NaN when the ECB has no rate |
| `customer_nb_tx_<w>d`           | `user_id`, `occurred_at`         | number of the user's transactions in (t - w days, t], current included |
| `customer_avg_amount_<w>d`      | `amount_usd`                     | mean USD amount over the same window |
| `customer_median_amount_<a>d`   | `amount_usd`                     | median USD amount of the user's earlier transactions in [t - a days, t), a = `anomaly_window_days`, leaving out velocity bursts and structuring groups |
| `customer_hist_nb_tx_<a>d`      | `occurred_at`                    | number of those earlier transactions |
| `amount_to_median_ratio`        | `amount_usd`                     | amount_usd / customer_median_amount |
| `customer_recent_anomalies_<r>d` | `amount_usd`                    | the user's earlier transactions in [t - r days, t), r = `anomaly_repeat_days`, at >= `anomaly_ratio` x this row's `customer_median_amount` (a compromised card is misused several times) |
| `customer_terminal_nb_tx_<a>d`  | `user_id`, `terminal_id`         | the user's earlier transactions at this terminal in [t - a days, t) (NaN without a terminal) |
| `customer_new_to_terminal`      | same                             | 1 when that number is 0: the first time in a days the user pays at this terminal (NaN without a terminal) |
| `velocity_nb_tx`                | `amount_usd`, `occurred_at`      | small charges (<= `velocity_small_amount_usd`) in (t - window, t] |
| `velocity_burst_nb_tx` / `velocity_burst_nb_terminals` / `velocity_burst_minutes` | `terminal_id` | size, distinct terminals and duration of the burst (>= `velocity_min_count` small charges within the window) the row belongs to; 0 outside bursts |
| `structuring_group_nb_tx` / `structuring_group_usd` / `structuring_group_hours` | `amount_usd` | size, USD total and duration of the group of near-threshold amounts ([floor, line] USD) within `structuring_window_hours` that together pass the line; 0 outside groups |
| `terminal_nb_tx_<w>d`           | `terminal_id`, `occurred_at`     | transactions on the terminal in the w days up to the label horizon, the day `label_delay_days` before the transaction's (`FraudParameters.label_delay_days`) |
| `terminal_nb_fraud_<w>d`        | `fraud_labels.is_fraud`          | confirmed frauds among them |
| `terminal_risk_<w>d`            | both                             | nb_fraud / nb_tx (0 when no transaction) |
| `terminal_recent_risk`          | both                             | confirmed-fraud share of the `terminal_history_days` days up to the label horizon, each day weighted by 0.5^(age / `terminal_risk_half_life_days`): falls within days of the labels showing a compromise ended |
| `terminal_run_fraud_share`      | both                             | confirmed-fraud share of the terminal's payments on the days of its current run of fraud (below, all of its days; 0 without one): a compromise defrauds whoever pays there, so this is near 1 from the run's first labelled day, while `terminal_recent_risk` is still diluted by the clean days before it (round 9b of #14) |
| `terminal_days_since_fraud`     | `fraud_labels.is_fraud`          | days from the last known fraud to the label horizon (`terminal_history_days` when none) |
| `terminal_fraud_run_days`       | both                             | length in days of the current run of fraud on the terminal as known at the horizon: from its first fraud day to the horizon, through days without transactions; 0 when the latest labelled day with transactions was clean; read over `terminal_history_days`, and on over `terminal_compromise_history_days` when no clean day ended it inside them (a compromise longer than the window is known at its true age) |
| `terminal_compromise_active_probability` | both                | P(that run still goes on at the transaction's day, `label_delay_days` after the horizon, given it lasted from its first to its last known fraud day), Kaplan-Meier over the lengths of every terminal's runs (an ended run's end: half at its last fraud day, half at the day before the clean day that ended it) in the `terminal_compromise_history_days` days up to the horizon in which at least `terminal_compromise_min_customers` distinct customers had confirmed fraud (`engine.survival`; the history's fraud-customer table); 0 without an ongoing run or with one of fewer than `terminal_compromise_min_customers` defrauded customers, 1 with one but fewer than `terminal_compromise_min_runs` ended runs to learn from |
| `terminal_compromise_lengths`   | same                             | text for the reason: the middle 80 % of those lengths and how many runs ended (not a model feature) |
| `terminal_early_fraud_customers` | `user_id`, `fraud_labels.labelled_at` | other customers whose payments at the terminal in the e = `early_label_days` days up to the transaction's day (the nightly run's: those after its horizon) are confirmed fraud already, by labels that came less than e days after their payment and were known by the end of the transaction's day (the stream: have arrived) — an analyst's decision, an early chargeback (`terminal_early_fraud_min_customers`); 0 where labels come `label_delay_days` late |
| `terminal_early_active_probability` | same                        | P(the compromise those early confirmed frauds show still goes on at the transaction's day): it began at the start of the labelled run reaching the horizon (if any, else at the first early fraud) and lasted at least to the last early fraud; the same Kaplan-Meier lengths as `terminal_compromise_active_probability`; 0 without early confirmed fraud, 1 with too few ended runs to learn from; read by `terminal_risk`, not a model feature (`model.RULE_ONLY_COLUMNS`) |
| `terminal_profile_nb_tx_<p>d`   | `terminal_id`, `occurred_at`     | with `terminal_profile_features`: the terminal's payments in the p = `terminal_profile_days` days before the transaction's day (no label needed) |
| `terminal_new_customer_share_<p>d` | `user_id`                     | share of them by customers new to the terminal (`customer_new_to_terminal`, all users) |
| `terminal_signal_customers_<p>d` | `user_id`, `amount_usd`         | customers who had paid at the terminal in the anomaly window before showing, on one of those days, a spending anomaly or card-testing burst at another terminal |
| `terminal_log_amount_mean`      | `amount_usd`                     | mean of log(1 + USD) of those payments |
| `terminal_amount_zscore`        | `amount_usd`                     | (log(1 + amount_usd) - that mean) / their standard deviation (at least 0.1); NaN under 2 payments |

(Bursts and groups mark every row they contain: `customer_features`.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ledgerguard.fraud.engine.customer_features import customer_features
from ledgerguard.fraud.engine.terminal_features import terminal_features
from ledgerguard.fraud.engine.terminal_history import TerminalHistory
from ledgerguard.fraud.engine.windows import SECONDS_PER_DAY, TimeAxis
from ledgerguard.settings.fraud import FraudParameters


def build_features(
    frame: pd.DataFrame,
    history: TerminalHistory,
    params: FraudParameters,
    *,
    rows: np.ndarray | None = None,
) -> pd.DataFrame:
    """Every feature of the catalogue for a sorted transaction frame (same row order).

    With `rows` (a mask), only those rows' features are returned and computed: the customer
    windows still read the whole frame (earlier rows fill them), but the per-row window searches
    (`customer_features(at=...)`) and terminal look-ups are made for the selected rows only. A
    nightly page is mostly lookback rows, a streaming batch mostly its users' older
    transactions: neither needs their features.
    """
    max_window_s = int(
        max(params.lookback_days, max(params.terminal_feature_windows)) * SECONDS_PER_DAY
    )
    axis = TimeAxis(
        frame["user_id"].to_numpy(), frame["ts_us"].to_numpy(), max_window_s=max_window_s
    )
    if rows is not None and not rows.all():
        customer = customer_features(frame, axis, params, at=np.flatnonzero(rows))
        frame = frame[rows]
    else:
        customer = customer_features(frame, axis, params)
    columns = customer | terminal_features(frame, history, params)
    return pd.DataFrame(columns, index=frame.index)
