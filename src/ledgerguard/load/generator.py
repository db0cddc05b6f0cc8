"""Realistic transaction bodies for load tests, cheap enough to build one per request.

What "realistic" means here, and why each choice:

* **Customers**: `customers` distinct `user_id`s starting at `first_user_id`; a few customers make
  most payments (index = N·u², u uniform), as in real card traffic, so per-user indexes see hot
  and cold keys.
* **Currencies**: USD 55 %, EUR 25 %, GBP 12 %, JPY 8 %, with their ISO 4217 decimals (JPY has
  none), so the API's minor-unit checks and FX conversion run on every path.
* **Amounts**: log-normal in USD (median ≈ $35, long right tail), converted with rough static
  rates into the payment's currency and rounded to its minor unit. A share `large_share` (1 % by
  default) is drawn between $11,000 and $60,000: over the fraud engine's 10,000 USD line whatever
  the day's ECB rate, so the nightly analysis has something to flag.
* **Context**: `terminal_id` on 70 % and `merchant_id` on 80 % of payments, from bounded pools.

Amounts are sent as JSON strings ("12.30"), as the API documents, so no float rounding happens on
the client. Bodies are formatted by hand: `json.dumps` of a dict costs several times more, and the
client's CPU is taken from the API it measures. A seeded generator gives a reproducible stream.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

#: Currency → (share of payments, minor-unit digits, rough USD per unit for amount sizes only).
CURRENCIES: dict[str, tuple[float, int, float]] = {
    "USD": (0.55, 2, 1.0),
    "EUR": (0.25, 2, 1.08),
    "GBP": (0.12, 2, 1.27),
    "JPY": (0.08, 0, 0.0067),
}
#: Large payments are drawn above this, so they pass 10,000 USD even with a few % of FX drift.
LARGE_MIN_USD = 11_000.0
LARGE_MAX_USD = 60_000.0


@dataclass(frozen=True)
class GeneratorConfig:
    first_user_id: int = 1_000_000
    customers: int = 10_000
    terminals: int = 2_000
    merchants: int = 500
    large_share: float = 0.01
    median_usd: float = 35.0
    sigma: float = 1.2
    terminal_share: float = 0.7
    merchant_share: float = 0.8
    seed: int | None = None


class TransactionGenerator:
    """An endless stream of `POST /transactions` JSON bodies (bytes)."""

    def __init__(self, config: GeneratorConfig | None = None) -> None:
        self.config = config or GeneratorConfig()
        self._random = random.Random(self.config.seed)
        self._mu = math.log(self.config.median_usd)
        self._codes = list(CURRENCIES)
        self._weights = [CURRENCIES[c][0] for c in self._codes]
        # cumulative weights once, so each draw is a bisect rather than a normalisation
        self._cum_weights = [sum(self._weights[: i + 1]) for i in range(len(self._weights))]

    def chance(self, share: float) -> bool:
        """True with probability `share`, from the same seeded stream as the bodies."""
        return self._random.random() < share

    def amount_usd(self) -> float:
        """One payment's size in USD (before rounding to the currency)."""
        rand = self._random
        if rand.random() < self.config.large_share:
            return math.exp(rand.uniform(math.log(LARGE_MIN_USD), math.log(LARGE_MAX_USD)))
        return rand.lognormvariate(self._mu, self.config.sigma)

    def body(self) -> bytes:
        """The next request body."""
        cfg = self.config
        rand = self._random
        user_id = cfg.first_user_id + customer_index(rand.random(), cfg.customers)
        currency = rand.choices(self._codes, cum_weights=self._cum_weights)[0]
        _, digits, usd_per_unit = CURRENCIES[currency]
        amount = format_minor(self.amount_usd() / usd_per_unit, digits)
        parts = [f'{{"user_id":{user_id},"amount":"{amount}","currency":"{currency}"']
        if rand.random() < cfg.terminal_share:
            parts.append(f',"terminal_id":{1 + rand.randrange(cfg.terminals)}')
        if rand.random() < cfg.merchant_share:
            parts.append(f',"merchant_id":{1 + rand.randrange(cfg.merchants)}')
        parts.append("}")
        return "".join(parts).encode()


def customer_index(u: float, customers: int) -> int:
    """The customer paying, from a uniform draw `u`: index = N·u², so the first 1 % of customers
    make 10 % of the payments (and customer 0 alone 1 %: at 2,000 TPS, 20 payments a second)."""
    return int(customers * u * u)


def format_minor(amount: float, digits: int) -> str:
    """`amount` rounded to `digits` decimals as a plain string, never below one minor unit."""
    minor = max(1, round(amount * 10**digits))
    if digits == 0:
        return str(minor)
    whole, fraction = divmod(minor, 10**digits)
    return f"{whole}.{fraction:0{digits}d}"
