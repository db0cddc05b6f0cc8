"""A labelled synthetic data set: normal card traffic plus injected fraud patterns.

Normal traffic follows the customer/terminal simulator of the Fraud Detection Handbook in spirit
(our own implementation): customers and terminals sit on a 100 x 100 grid, a customer pays only
at terminals within `radius`, each customer has a mean amount (USD 5-100, standard deviation
half of it) and a mean number of transactions per day (0-4, Poisson), and payments happen around
midday. Some customers pay in other currencies (converted from their USD amount at the ECB rate
of the day) and a very few in a currency the ECB does not publish.

Fraud patterns, each labelled with `is_fraud=1` and its `pattern` name:

* `large_amount`: single payments worth 10,000.01-60,000 USD, some in EUR/GBP.
* `structuring`: 2-5 payments of 9,000-9,990 USD-equivalent by one customer within 1-48 h.
* `card_testing`: 6-25 charges of 0.50-5.00 USD within 2-20 minutes on random terminals.
* `spending_anomaly`: compromised cards; for `card_compromise_days` (14) a share
  (`card_compromise_share`, a third) of their payments are multiplied by a factor drawn
  uniformly from [`card_misuse_factor_min`, `card_misuse_factor_max`] (4-10: Handbook
  scenario 3 with a random factor; 5-5 is the Handbook's own, fixed x5).
* `terminal_compromise`: compromised terminals; every payment on them for
  `terminal_compromise_days` (28) is fraud (Handbook scenario 2; with
  `terminal_compromise_days_max`, each compromise lasts a length drawn uniformly from
  [`terminal_compromise_days`, that]). Nothing in the payments
  themselves shows it: only the labels, which arrive late, and what the cards do elsewhere.
* skimmed cards (`skimmed_card_share`, 0.25): a compromised terminal copies the cards paying
  at it, and in the real world those cards are then misused *elsewhere* — the "common point
  of purchase" card issuers trace back to the shop. Each customer who paid at a compromised
  terminal during its compromise is, with that probability, compromised too
  `skim_delay_days` (1-7, uniform) after the first such payment: the card-compromise scenario
  above (`spending_anomaly`, a share of its payments that many times dearer for
  `card_compromise_days`). With `skimmed_card_share=0` the compromise leaves no trace on its
  customers' cards (the Handbook's own scenario, byte for byte the data of earlier versions;
  with `card_misuse_factor_min` and `_max` at 5 too, exactly the Handbook's).

The patterns are injected by `fraud.synthetic_patterns`; this module draws the normal
traffic and the currencies and puts them together, and `fraud.synthetic_files` writes the
files. Every pattern instance has a start and an end (`SyntheticData.events`, written as
`<name>_events.csv`), and every label a `labelled_at` `label_delay_days` (7) after the payment:
chargebacks arrive late, so an evaluation imports them as they would have been known. With
`early_label_share` > 0 that share of the frauds is labelled sooner, at a uniform moment of the
delay (a cardholder's dispute, an analyst's decision): what the feature
`terminal_early_fraud_customers` reads.

Everything is drawn from one `numpy` generator seeded with `seed`: the same configuration gives
the same files byte for byte. `user_id_offset`, `terminal_id_offset` and `external_prefix` let
several data sets share one database (tests use disjoint ranges).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd

from ledgerguard.fraud.engine.windows import SECONDS_PER_DAY, US_PER_SECOND
from ledgerguard.fraud.synthetic_patterns import (
    bursts_as_events,
    card_testing,
    large_amounts,
    spending_anomaly,
    structuring,
    terminal_compromise,
)
from ledgerguard.money import FxRates, currency_exponent

PATTERNS = (
    "large_amount",
    "structuring",
    "card_testing",
    "spending_anomaly",
    "terminal_compromise",
)
#: The per-customer-day rates of the fraud patterns (`--fraud-scale` multiplies them all).
RATE_FIELDS = (
    "large_amount_rate",
    "structuring_rate",
    "card_testing_rate",
    "compromised_customer_rate",
    "compromised_terminal_rate",
)
FOREIGN_CURRENCIES = ("EUR", "GBP", "JPY", "CHF", "CAD")
NO_RATE_CURRENCY = "XOF"  # active ISO 4217 code without an ECB reference rate


@dataclass(frozen=True)
class SyntheticConfig:
    """Size, seed, id ranges and pattern rates (per customer-day) of a data set."""

    customers: int = 2_000
    terminals: int = 1_000
    days: int = 60
    start: date = date(2025, 1, 1)
    seed: int = 0
    user_id_offset: int = 1
    terminal_id_offset: int = 1
    external_prefix: str = "syn-"
    radius: float = 5.0
    foreign_share: float = 0.15
    no_rate_share: float = 0.001
    large_amount_rate: float = 0.0002
    structuring_rate: float = 0.0002
    card_testing_rate: float = 0.0002
    compromised_customer_rate: float = 0.0005
    compromised_terminal_rate: float = 0.0002
    card_compromise_days: int = 14
    card_compromise_share: float = 1 / 3
    card_misuse_factor_min: float = 4.0
    card_misuse_factor_max: float = 10.0
    terminal_compromise_days: int = 28
    #: 0: every terminal compromise lasts `terminal_compromise_days` (the Handbook's fixed 28);
    #: else each lasts a whole number of days drawn uniformly from [that, this]: real
    #: compromises do not all last the same, and the engine learns their lengths
    terminal_compromise_days_max: int = 0
    skimmed_card_share: float = 0.25
    skim_delay_days: int = 7
    label_delay_days: int = 7
    #: Share of the frauds labelled before `label_delay_days`, each at a uniform moment of the
    #: delay (0: every label comes the full delay late, byte for byte the data of before)
    early_label_share: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.early_label_share <= 1.0:
            raise ValueError(f"early_label_share must be in [0, 1], got {self.early_label_share}")
        if not 1 <= self.card_misuse_factor_min <= self.card_misuse_factor_max:
            raise ValueError(
                "the card misuse factor range must satisfy 1 <= min <= max, got "
                f"{self.card_misuse_factor_min}-{self.card_misuse_factor_max}"
            )
        if 0 < self.terminal_compromise_days_max < self.terminal_compromise_days:
            raise ValueError(
                "terminal_compromise_days_max must be 0 or at least terminal_compromise_days "
                f"({self.terminal_compromise_days}), got {self.terminal_compromise_days_max}"
            )


@dataclass(frozen=True)
class SyntheticData:
    """`transactions` in the import format (times as UTC datetimes), `labels` and `events`.

    `events` holds one row per pattern instance: the pattern, its customer or terminal (-1 for
    the other), and [start, end) as UTC datetimes.
    """

    transactions: pd.DataFrame
    labels: pd.DataFrame
    events: pd.DataFrame


def config_for_rows(
    rows: int, *, terminals_per_customer: float = 0.5, **overrides: object
) -> SyntheticConfig:
    """A configuration producing about `rows` transactions (two per customer-day on average).

    The Handbook's own simulation has two terminals per customer (5,000 and 10,000), i.e.
    about one payment per terminal and day; the default here (0.5) is a busier shop network.
    """
    base = SyntheticConfig()
    days = int(overrides.get("days", base.days))  # type: ignore[call-overload]
    customers = max(50, round(rows / (2 * days)))
    terminals = max(50, round(customers * terminals_per_customer))
    return replace(base, customers=customers, terminals=terminals, **overrides)  # type: ignore[arg-type]


#: `progress(done, total)`: steps (generate) or rows (`synthetic_files.write_dataset`) done so
#: far.
Progress = Callable[[int, int], None]
#: Steps `generate` reports through its `progress` after the reachable terminals (whose
#: blocks of `_REACH_BLOCK` customers count one step each: the slow part at full size).
GENERATE_STEPS = 6
_REACH_BLOCK = 2_000


def no_progress(done: int, total: int) -> None:
    """Default progress sink."""


def generate(config: SyntheticConfig, *, progress: Progress = no_progress) -> SyntheticData:
    """The data set of `config` (deterministic); `progress(done, total)` is told each block of
    customers whose reachable terminals were found, then each of `GENERATE_STEPS` steps (at
    13.4M rows the whole takes minutes)."""
    total = -(-config.customers // _REACH_BLOCK) + GENERATE_STEPS
    done = iter(range(1, total + 1))

    def step() -> None:
        progress(next(done), total)

    progress(0, total)
    rng = np.random.default_rng(config.seed)
    start_us = int(datetime.combine(config.start, datetime.min.time(), UTC).timestamp()) * (
        US_PER_SECOND
    )
    normal = _normal_traffic(config, rng, start_us, on_block=step)
    events: list[pd.DataFrame] = []
    compromised = terminal_compromise(
        spending_anomaly(normal, config, rng, start_us, events), config, rng, start_us, events
    )
    step()
    frames = [
        compromised,
        large_amounts(normal, config, rng, start_us),
        structuring(normal, config, rng, start_us),
        card_testing(normal, config, rng, start_us),
    ]
    for frame in frames[1:]:
        events.append(bursts_as_events(frame))
    step()
    data = pd.concat(frames, ignore_index=True).drop(columns="burst")
    data = data.sort_values(["ts_us", "user_id"], kind="stable").reset_index(drop=True)
    step()
    data = _currencies(data, config, rng)
    step()
    ids = pd.Series(np.arange(len(data)), dtype="int64").map(
        lambda i: f"{config.external_prefix}{i:09d}"
    )
    step()
    transactions = pd.DataFrame(
        {
            "external_id": ids,
            "user_id": data["user_id"] + config.user_id_offset,
            "terminal_id": data["terminal_id"] + config.terminal_id_offset,
            "amount": data["amount"],
            "currency": data["currency"],
            "occurred_at": pd.to_datetime(data["ts_us"], unit="us", utc=True),
        }
    )
    labelled_at = transactions["occurred_at"] + pd.Timedelta(days=config.label_delay_days)
    if config.early_label_share > 0:  # drawn last and only then: the data before is unchanged
        fraud = np.flatnonzero(data["is_fraud"].astype(bool))
        early = fraud[rng.random(len(fraud)) < config.early_label_share]
        sooner = rng.random(len(early)) * config.label_delay_days * 86_400 * US_PER_SECOND
        labelled_at.iloc[early] = transactions["occurred_at"].iloc[early] + pd.to_timedelta(
            sooner.astype(np.int64), unit="us"
        )
    labels = pd.DataFrame(
        {
            "external_id": ids,
            "is_fraud": data["is_fraud"].astype(int),
            "pattern": data["pattern"],
            "labelled_at": labelled_at,
        }
    )
    table = pd.concat(events, ignore_index=True)
    table = table.sort_values(["start", "pattern"], kind="stable").reset_index(drop=True)
    table["user_id"] = np.where(table["user_id"] >= 0, table["user_id"] + config.user_id_offset, -1)
    table["terminal_id"] = np.where(
        table["terminal_id"] >= 0, table["terminal_id"] + config.terminal_id_offset, -1
    )
    for column in ("start", "end"):
        table[column] = pd.to_datetime(table[column], unit="us", utc=True)
    step()
    return SyntheticData(transactions=transactions, labels=labels, events=table)


def _normal_traffic(
    config: SyntheticConfig,
    rng: np.random.Generator,
    start_us: int,
    on_block: Callable[[], None] = lambda: None,
) -> pd.DataFrame:
    c, t = config.customers, config.terminals
    customer_xy = rng.uniform(0, 100, (c, 2))
    terminal_xy = rng.uniform(0, 100, (t, 2))
    mean_amount = rng.uniform(5, 100, c)
    tx_per_day = rng.uniform(0, 4, c)
    offsets, counts, reachable = _reachable_terminals(
        customer_xy, terminal_xy, config.radius, on_block=on_block
    )

    per_day = rng.poisson(tx_per_day[:, None], (c, config.days))
    customer = np.repeat(np.repeat(np.arange(c), config.days), per_day.ravel())
    day = np.repeat(np.tile(np.arange(config.days), c), per_day.ravel())
    n = len(customer)
    seconds = rng.normal(SECONDS_PER_DAY / 2, 20_000, n)
    while (bad := (seconds < 0) | (seconds >= SECONDS_PER_DAY)).any():
        seconds[bad] = rng.normal(SECONDS_PER_DAY / 2, 20_000, int(bad.sum()))
    mean = mean_amount[customer]
    usd = rng.normal(mean, mean / 2)
    negative = usd <= 0
    usd[negative] = rng.uniform(0, 2 * mean[negative])
    pick = offsets[customer] + (rng.random(n) * counts[customer]).astype(np.int64)
    return pd.DataFrame(
        {
            "user_id": customer.astype(np.int64),
            "terminal_id": reachable[pick].astype(np.int64),
            "ts_us": start_us
            + (day * SECONDS_PER_DAY + seconds).astype(np.int64) * US_PER_SECOND
            + rng.integers(0, US_PER_SECOND, n),
            "usd": np.maximum(np.round(usd, 2), 0.01),
            "is_fraud": False,
            "pattern": "",
            "burst": -1,
        }
    )


def _reachable_terminals(
    customer_xy: np.ndarray,
    terminal_xy: np.ndarray,
    radius: float,
    on_block: Callable[[], None] = lambda: None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR lists of terminals within `radius` of each customer (the nearest one if none);
    `on_block` after each block of `_REACH_BLOCK` customers."""
    lists = []
    for chunk in range(0, len(customer_xy), _REACH_BLOCK):
        block = customer_xy[chunk : chunk + _REACH_BLOCK]
        distance = np.linalg.norm(block[:, None, :] - terminal_xy[None, :, :], axis=2)
        near = distance < radius
        nearest = distance.argmin(axis=1)
        near[np.arange(len(block)), nearest] = True
        lists.extend(np.flatnonzero(row) for row in near)
        on_block()
    counts = np.array([len(item) for item in lists], dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(counts)[:-1]))
    return offsets, counts, np.concatenate(lists)


def _currencies(
    data: pd.DataFrame, config: SyntheticConfig, rng: np.random.Generator
) -> pd.DataFrame:
    """Pick each payment's currency and express its USD value in it (exact decimal strings)."""
    n = len(data)
    draw = rng.random(n)
    currency = np.full(n, "USD", dtype=object)
    foreign = draw < config.foreign_share
    currency[foreign] = rng.choice(FOREIGN_CURRENCIES, int(foreign.sum()))
    currency[
        (draw >= config.foreign_share) & (draw < config.foreign_share + config.no_rate_share)
    ] = NO_RATE_CURRENCY
    # Near-threshold patterns stay in USD or EUR so their USD value stays in the pattern's range.
    pinned = data["pattern"].isin(["structuring", "large_amount"]).to_numpy()
    currency[pinned & (currency != "EUR")] = "USD"
    fx = FxRates()
    days = data["ts_us"].to_numpy() // (SECONDS_PER_DAY * US_PER_SECOND)
    rate = np.ones(n)
    for code in set(currency) - {"USD", NO_RATE_CURRENCY}:
        rows = np.flatnonzero(currency == code)
        for day in np.unique(days[rows]):
            on = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=int(day))).date()
            usd_rate = fx.usd_rate(code, on)
            rate[rows[days[rows] == day]] = float(usd_rate) if usd_rate else 1.0
    exponent = np.array([currency_exponent(code) for code in currency])
    native = data["usd"].to_numpy() / rate
    # Round down in the currency so a converted amount never crosses a USD line by rounding up.
    minor = np.maximum(np.floor(native * 10.0**exponent), 1).astype(np.int64)
    large = data["pattern"].to_numpy() == "large_amount"
    minor[large] += 10 ** exponent[large]  # ... except large amounts, kept safely above the line
    data = data.assign(currency=currency, amount=_decimal_strings(minor, exponent))
    return data


def _decimal_strings(minor: np.ndarray, exponent: np.ndarray) -> list[str]:
    out = []
    for value, places in zip(minor.tolist(), exponent.tolist(), strict=True):
        if places == 0:
            out.append(str(value))
        else:
            whole, fraction = divmod(value, 10**places)
            out.append(f"{whole}.{fraction:0{places}d}")
    return out
