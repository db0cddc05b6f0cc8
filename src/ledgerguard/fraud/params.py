"""Parameters of the fraud rules and score, nested in `Settings.fraud`.

Set from the environment as `LEDGERGUARD_FRAUD__<NAME>` (double underscore), e.g.
`LEDGERGUARD_FRAUD__LARGE_AMOUNT_USD=10000`.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, Field


class FraudParameters(BaseModel):
    """Thresholds and windows of every rule; defaults follow the original design."""

    large_amount_usd: Decimal = Field(Decimal("10000.00"), gt=0)
