"""Money rules shared by the API, imports and the fraud engine: currencies, minor units, USD.

* Currencies are the **active ISO 4217** codes as published by the maintained `iso4217` package
  (no hand-written list). Codes without minor units (gold, SDR, test codes: exponent "N.A.") are
  not payment currencies and are refused.
* An amount may carry no more fraction digits than its currency's minor unit (JPY 0, USD 2,
  BHD 3, CLF 4).
* `amount_usd` uses the **ECB euro reference rates** shipped with the `CurrencyConverter`
  package, crossed through EUR, for the transaction's UTC date:
  - weekends and holidays (no fixing) use the rate linearly interpolated between the
    surrounding fixings;
  - dates after the last fixing in the shipped data (or before the first) use the nearest
    fixing; upgrading the package refreshes the data;
  - currencies the ECB does not publish (about 140 of the ISO list) have no USD amount:
    `to_usd` returns None, the row keeps `amount_usd` NULL and the fraud engine reports it.
  The result is rounded half-even to 4 decimal places (the column's scale).
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from functools import cache

from iso4217 import Currency

from ledgerguard.errors import LedgerGuardError

USD_SCALE = Decimal("0.0001")
#: Largest amount one transaction may carry (in its own currency); DECIMAL(19,4) holds 10^15.
MAX_AMOUNT = Decimal("1000000000000")


class MoneyError(LedgerGuardError, ValueError):
    """An amount or currency that breaks a money rule; the message names the rule."""


@cache
def _exponents() -> dict[str, int]:
    return {c.code: c.exponent for c in Currency if c.exponent is not None}


def active_currencies() -> frozenset[str]:
    """Every active ISO 4217 code usable for payments."""
    return frozenset(_exponents())


def currency_exponent(code: str) -> int:
    """Number of minor-unit digits of `code` (USD 2, JPY 0); `MoneyError` for unknown codes."""
    try:
        return _exponents()[code]
    except KeyError:
        raise MoneyError(
            f"{code!r} is not an active ISO 4217 currency code (e.g. USD, EUR, JPY)"
        ) from None


def check_amount(amount: Decimal, currency: str, *, maximum: Decimal) -> Decimal:
    """`amount` if it is a finite positive amount valid for `currency`, else `MoneyError`."""
    exponent = currency_exponent(currency)
    if not amount.is_finite():
        raise MoneyError("amount must be a finite number")
    if amount <= 0:
        raise MoneyError("amount must be greater than 0")
    if amount > maximum:
        raise MoneyError(f"amount must not exceed {maximum}")
    digits = -amount.normalize().as_tuple().exponent
    if digits > exponent:
        raise MoneyError(
            f"amount has {digits} decimal places but {currency} allows at most {exponent}"
        )
    return amount


def format_amount(amount: Decimal, currency: str) -> str:
    """`amount` with exactly the currency's decimals (15000 USD → '15000.00')."""
    exponent = _exponents().get(currency, 2)
    return str(amount.quantize(Decimal(1).scaleb(-exponent), rounding=ROUND_HALF_EVEN))


def display_amount(amount: Decimal, currency: str) -> str:
    """`amount` for people, as the reasons and the web pages write it: the currency's decimals,
    thousands separated, the code after it (15,000.00 USD, 2,000,000 JPY). The API and the
    reports keep the machine form, `format_amount`."""
    return f"{Decimal(format_amount(amount, currency)):,} {currency}"


class FxRates:
    """ECB reference rates (see module docstring); build one per process and share it.

    Loading the shipped history takes a fraction of a second, so callers create it once (app
    factory, pipeline run) and pass it down; rates are memoised per (currency, date).
    """

    def __init__(self) -> None:
        from currency_converter import CurrencyConverter

        self._converter = CurrencyConverter(
            fallback_on_missing_rate=True,
            fallback_on_missing_rate_method="linear_interpolation",
            fallback_on_wrong_date=True,
        )
        self._rates: dict[tuple[str, date], Decimal | None] = {}

    @property
    def currencies(self) -> frozenset[str]:
        """Currencies with an ECB rate."""
        return frozenset(self._converter.currencies)

    def usd_rate(self, currency: str, on: date) -> Decimal | None:
        """USD per one unit of `currency` on `on`, or None when the ECB has no rate for it."""
        key = (currency, on)
        if key not in self._rates:
            self._rates[key] = self._lookup(currency, on)
        return self._rates[key]

    def _lookup(self, currency: str, on: date) -> Decimal | None:
        if currency == "USD":
            return Decimal(1)
        if currency not in self._converter.currencies:
            return None
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the fallback warnings are documented behaviour
            rate = self._converter.convert(1, currency, "USD", date=on)
        return Decimal(repr(rate))

    def to_usd(self, amount: Decimal, currency: str, on: date) -> Decimal | None:
        """`amount` in USD at the ECB rate of `on`, 4 decimals, or None (no ECB rate)."""
        rate = self.usd_rate(currency, on)
        if rate is None:
            return None
        return (amount * rate).quantize(USD_SCALE, rounding=ROUND_HALF_EVEN)
