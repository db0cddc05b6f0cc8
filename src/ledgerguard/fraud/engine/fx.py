"""USD amounts of whole columns, exact, with the rules of `ledgerguard.money`.

Money travels through the engine as integer 10^-4 units (the scale of DECIMAL(19,4)), so
thresholds compare exactly and no float rounding decides a boundary. Conversion goes through
`FxRates.to_usd` itself (ECB rate of the UTC date, half-even to 4 places) for every non-USD row,
so the importer, the API and the engine can never disagree on a USD amount; USD rows are copied
as they are, which is what `to_usd` returns for them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pandas as pd

from ledgerguard.fraud.engine.windows import SECONDS_PER_DAY, US_PER_SECOND
from ledgerguard.money import FxRates

UNKNOWN = -1


def parse_units(amounts: pd.Series) -> np.ndarray:
    """Exact 10^-4 units of plain decimal strings ("15000", "15000.5", "0.0001").

    The caller has validated the strings (digits, at most one point, at most 4 decimals).
    """
    parts = amounts.str.partition(".")
    whole = parts[0].astype("int64").to_numpy()
    fraction = parts[2].str.ljust(4, "0").astype("int64").to_numpy()
    return whole * 10_000 + fraction


def units_to_decimal(units: int) -> Decimal:
    """10^-4 units back to a Decimal with 4 places."""
    return Decimal(int(units)).scaleb(-4)


def usd_units(
    amount_units: np.ndarray, currency: np.ndarray, ts_us: np.ndarray, fx: FxRates
) -> np.ndarray:
    """USD 10^-4 units per row, or `UNKNOWN` (-1) where the ECB has no rate for the currency."""
    result = np.full(len(amount_units), UNKNOWN, dtype=np.int64)
    is_usd = currency == "USD"
    result[is_usd] = amount_units[is_usd]
    rows = np.flatnonzero(~is_usd)
    if len(rows) == 0:
        return result
    days = ts_us[rows] // (SECONDS_PER_DAY * US_PER_SECOND)
    converted = []
    for units, code, day in zip(amount_units[rows], currency[rows], days, strict=True):
        on = datetime.fromtimestamp(int(day) * SECONDS_PER_DAY, UTC).date()
        usd = fx.to_usd(units_to_decimal(units), str(code), on)
        converted.append(UNKNOWN if usd is None else int(usd.scaleb(4)))
    result[rows] = converted
    return result


def fill_missing_usd(frame: pd.DataFrame, fx: FxRates) -> pd.DataFrame:
    """`frame` with `usd_units` computed where it is unknown (NULL `amount_usd` rows)."""
    missing = frame["usd_units"].to_numpy() < 0
    if not missing.any():
        return frame
    frame = frame.copy()
    units = frame["usd_units"].to_numpy().copy()
    units[missing] = usd_units(
        frame["amount_units"].to_numpy()[missing],
        frame["currency"].to_numpy()[missing],
        frame["ts_us"].to_numpy()[missing],
        fx,
    )
    frame["usd_units"] = units
    return frame
