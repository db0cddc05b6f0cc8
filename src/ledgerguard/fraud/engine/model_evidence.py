"""What a model's verdict rests on, in words: the reason text of the `model` signal.

The rules word their own flags (`engine.rules`, each rule's `explain`); a trained model gives a
probability and no reason, so `scoring` names beside it the features that are unusual on the
row. None of them is a rule, and none changes a score or a flag: they are what an analyst can
check on the row (new customer at the terminal, an odd amount for the terminal or the customer,
confirmed fraud at the terminal, ...).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ledgerguard.settings.fraud import FraudParameters


def evidence(data: pd.DataFrame, params: FraudParameters) -> list[str]:
    """Per row, the visible signals among the model's features, in words an analyst can check.

    The model gives a probability, not a reason; this names the features that are unusual on
    the row (none of them is a rule on its own): a customer new to the terminal, a terminal
    whose recent payments come mostly from customers new to it, an amount unusual for the
    terminal or the customer, a customer with recent payments far above their usual, a
    terminal with confirmed fraud. Empty when none is.
    """
    a, p = params.anomaly_window_days, params.terminal_profile_days
    r = params.anomaly_repeat_days
    n = len(data)

    def column(name: str) -> np.ndarray:
        return data[name].to_numpy(dtype=float) if name in data else np.full(n, np.nan)

    new = column("customer_new_to_terminal")
    share = column(f"terminal_new_customer_share_{p}d")
    zscore = column("terminal_amount_zscore")
    ratio = column("amount_to_median_ratio")
    risk = column("terminal_recent_risk")
    signals = column(f"terminal_signal_customers_{p}d")
    repeats = column(f"customer_recent_anomalies_{r}d")
    texts = []
    for i, terminal in enumerate(data["terminal_id"].to_numpy()):
        parts = []
        if new[i] == 1:
            parts.append(f"first payment of the user at terminal {terminal} in {a} days")
        if share[i] >= 0.5:
            parts.append(
                f"{share[i]:.0%} of the terminal's payments of the last {p} days by new customers"
            )
        if abs(zscore[i]) >= 3:
            parts.append(f"amount {zscore[i]:+.1f} sd from the terminal's usual (log scale)")
        if signals[i] >= 1:
            parts.append(
                f"{signals[i]:.0f} of the terminal's recent customers unusual elsewhere "
                f"in the last {p} days"
            )
        if ratio[i] >= 2:
            parts.append(f"{ratio[i]:.1f}x the user's {a}-day median")
        if repeats[i] >= 1:
            parts.append(
                f"{repeats[i]:.0f} of the user's payments of the last {r} days at "
                f"{params.anomaly_ratio:g}x that median or more"
            )
        if risk[i] > 0:
            parts.append(f"terminal's recent confirmed-fraud share {risk[i]:.0%}")
        texts.append("; ".join(parts))
    return texts
