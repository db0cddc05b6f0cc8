"""The words a model verdict's reason names beside its probability (no database)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ledgerguard.fraud.engine.model_evidence import evidence
from ledgerguard.settings.fraud import FraudParameters


def test_evidence_names_the_unusual_features_behind_a_model_verdict():
    data = pd.DataFrame(
        {
            "terminal_id": [7, 8],
            "customer_new_to_terminal": [1.0, 0.0],
            "terminal_new_customer_share_7d": [0.6, 0.1],
            "terminal_amount_zscore": [3.4, 0.2],
            "amount_to_median_ratio": [1.0, np.nan],
            "terminal_recent_risk": [0.0, 0.25],
            "customer_recent_anomalies_7d": [0, 3],
        }
    )
    first, second = evidence(data, FraudParameters())
    assert "first payment of the user at terminal 7 in 30 days" in first
    assert "60% of the terminal's payments of the last 7 days by new customers" in first
    assert "amount +3.4 sd from the terminal's usual" in first
    assert "median" not in first and "confirmed-fraud" not in first
    assert second == (
        "3 of the user's payments of the last 7 days at 3x that median or more; "
        "terminal's recent confirmed-fraud share 25%"
    )
