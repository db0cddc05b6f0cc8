"""The engine's input: transactions in the import format as a transaction frame (`TX_DTYPES`).

Used wherever transactions come from a file or memory rather than the replica (the evaluation,
model training, the unit tests); the pipeline builds the same columns straight from SQL in
`ledgerguard.fraud.reader`. It lives in the engine, not in `evaluate`, so training a model does
not depend on the evaluation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ledgerguard.fraud.engine.fx import parse_units, usd_units
from ledgerguard.money import FxRates


def engine_frame(transactions: pd.DataFrame, fx: FxRates) -> pd.DataFrame:
    """Transactions in the import format (strings or parsed) as the engine's transaction frame.

    Ids are assigned 1..n in the given order; the frame keeps `external_id` for joining labels.
    """
    occurred = pd.to_datetime(transactions["occurred_at"], utc=True, format="ISO8601")
    ts_us = occurred.astype("datetime64[us, UTC]").astype("int64").to_numpy()
    amount_units = parse_units(transactions["amount"].astype(str))
    currency = transactions["currency"].astype(str).to_numpy()
    terminal = pd.to_numeric(transactions["terminal_id"], errors="coerce").fillna(-1)
    return pd.DataFrame(
        {
            "transaction_id": np.arange(1, len(transactions) + 1, dtype=np.int64),
            "user_id": transactions["user_id"].astype("int64").to_numpy(),
            "terminal_id": terminal.astype("int64").to_numpy(),
            "ts_us": ts_us,
            "amount_units": amount_units,
            "currency": currency,
            "usd_units": usd_units(amount_units, currency, ts_us, fx),
            "external_id": transactions["external_id"].astype(str).to_numpy(),
        }
    )
