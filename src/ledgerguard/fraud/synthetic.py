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

Every pattern instance has a start and an end (`SyntheticData.events`, written as
`<name>_events.csv`), and every label a `labelled_at` `label_delay_days` (7) after the payment:
chargebacks arrive late, so an evaluation imports them as they would have been known.

Everything is drawn from one `numpy` generator seeded with `seed`: the same configuration gives
the same files byte for byte. `user_id_offset`, `terminal_id_offset` and `external_prefix` let
several data sets share one database (tests use disjoint ranges).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from ledgerguard.fraud.engine.windows import SECONDS_PER_DAY, US_PER_SECOND
from ledgerguard.money import FxRates, currency_exponent

TRANSACTION_COLUMNS = ("external_id", "user_id", "terminal_id", "amount", "currency", "occurred_at")
LABEL_COLUMNS = ("external_id", "is_fraud", "pattern", "labelled_at")
EVENT_COLUMNS = ("pattern", "user_id", "terminal_id", "start", "end")
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

    def __post_init__(self) -> None:
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


#: `progress(done, total)`: steps (generate) or rows (write_dataset) done so far.
Progress = Callable[[int, int], None]
#: Steps `generate` reports through its `progress` after the reachable terminals (whose
#: blocks of `_REACH_BLOCK` customers count one step each: the slow part at full size).
GENERATE_STEPS = 6
_REACH_BLOCK = 2_000
#: Rows per `to_csv` call of `write_dataset` (what one progress step covers).
WRITE_CHUNK_ROWS = 500_000


def _no_progress(done: int, total: int) -> None:
    """Default progress sink."""


def generate(config: SyntheticConfig, *, progress: Progress = _no_progress) -> SyntheticData:
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
    compromised = _terminal_compromise(
        _spending_anomaly(normal, config, rng, start_us, events), config, rng, start_us, events
    )
    step()
    frames = [
        compromised,
        _large_amounts(normal, config, rng, start_us),
        _structuring(normal, config, rng, start_us),
        _card_testing(normal, config, rng, start_us),
    ]
    for frame in frames[1:]:
        events.append(_bursts_as_events(frame))
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


def _window_events(
    pattern: str,
    owners: np.ndarray,
    first_days: np.ndarray,
    length: int | np.ndarray,
    start_us: int,
    *,
    terminal: bool,
) -> pd.DataFrame:
    """Events of windowed patterns (compromised cards / terminals): whole days [first, +length)."""
    day_us = SECONDS_PER_DAY * US_PER_SECOND
    none = np.full(len(owners), -1, dtype=np.int64)
    return pd.DataFrame(
        {
            "pattern": pattern,
            "user_id": none if terminal else owners.astype(np.int64),
            "terminal_id": owners.astype(np.int64) if terminal else none,
            "start": start_us + first_days.astype(np.int64) * day_us,
            "end": start_us + (first_days.astype(np.int64) + length) * day_us,
        }
    )


def _bursts_as_events(rows: pd.DataFrame) -> pd.DataFrame:
    """Events of injected patterns: each (pattern, user) burst from its first to its last row."""
    spans = rows.groupby("burst", sort=False).agg(
        pattern=("pattern", "first"),
        user_id=("user_id", "first"),
        min=("ts_us", "min"),
        max=("ts_us", "max"),
    )
    return pd.DataFrame(
        {
            "pattern": spans["pattern"].to_numpy(),
            "user_id": spans["user_id"].to_numpy(dtype=np.int64),
            "terminal_id": -1,
            "start": spans["min"].to_numpy(dtype=np.int64),
            "end": spans["max"].to_numpy(dtype=np.int64) + 1,
        }
    )


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


def _events(config: SyntheticConfig, rate: float, rng: np.random.Generator) -> int:
    expected = rate * config.customers * config.days
    return max(1, int(rng.poisson(expected)))


def _rows_in_windows(
    data: pd.DataFrame,
    column: str,
    owners: np.ndarray,
    first_days: np.ndarray,
    length: int | np.ndarray,
) -> np.ndarray:
    """Row positions whose `column` is one of `owners` and whose day is in the owner's window
    (`length` days: one for all, or one per owner).

    Days count from the first payment's time, not from midnight: a window begins and ends that
    many minutes after the midnight its event names (seconds in a benchmark-size set, whose
    first payment comes right after midnight). Kept so: counted from midnight, a payment in
    those minutes changes pattern and every later draw follows, so the data of every earlier
    benchmark would no longer be reproducible (seen in session 15: dev seed 12 at 2.0 terminals
    per customer went from 531,219 to 530,978 payments)."""
    day = (data["ts_us"] - data["ts_us"].min()) // (SECONDS_PER_DAY * US_PER_SECOND)
    rows = pd.DataFrame({"owner": data[column].to_numpy(), "day": day.to_numpy()})
    rows["position"] = np.arange(len(rows))
    events = pd.DataFrame({"owner": owners, "first": first_days, "last": first_days + length - 1})
    hits = rows[rows["owner"].isin(owners)].merge(events, on="owner")
    hits = hits[(hits["day"] >= hits["first"]) & (hits["day"] <= hits["last"])]
    return np.unique(hits["position"].to_numpy())


def _spending_anomaly(
    normal: pd.DataFrame,
    config: SyntheticConfig,
    rng: np.random.Generator,
    start_us: int,
    events: list[pd.DataFrame],
) -> pd.DataFrame:
    n = _events(config, config.compromised_customer_rate, rng)
    customers = rng.integers(0, config.customers, n)
    first = rng.integers(0, config.days, n)
    return _misuse_cards(normal, customers, first, config, rng, start_us, events)


def _misuse_cards(
    data: pd.DataFrame,
    customers: np.ndarray,
    first: np.ndarray,
    config: SyntheticConfig,
    rng: np.random.Generator,
    start_us: int,
    events: list[pd.DataFrame],
) -> pd.DataFrame:
    """Compromised cards (Handbook scenario 3): from day `first` on, for `card_compromise_days`,
    a share of each card's payments not already fraud costs `card_misuse_factor_min`-`_max`
    times as much."""
    length = config.card_compromise_days
    rows = _rows_in_windows(data, "user_id", customers, first, length)
    rows = rows[~data["is_fraud"].to_numpy()[rows]]
    events.append(
        _window_events("spending_anomaly", customers, first, length, start_us, terminal=False)
    )
    chosen = rows[rng.random(len(rows)) < config.card_compromise_share]
    # one draw per row whatever the range (5-5 too): the other patterns' data stay the same
    factor = rng.uniform(config.card_misuse_factor_min, config.card_misuse_factor_max, len(chosen))
    usd = data["usd"].to_numpy().copy()
    usd[chosen] = np.round(usd[chosen] * factor, 2)
    data = data.assign(usd=usd)
    return _label(data, chosen, "spending_anomaly")


def _terminal_compromise(
    data: pd.DataFrame,
    config: SyntheticConfig,
    rng: np.random.Generator,
    start_us: int,
    events: list[pd.DataFrame],
) -> pd.DataFrame:
    n = _events(config, config.compromised_terminal_rate, rng)
    terminals = rng.integers(0, config.terminals, n)
    first = rng.integers(0, config.days, n)
    length: int | np.ndarray = config.terminal_compromise_days
    if config.terminal_compromise_days_max:  # drawn only then: the default data stay the same
        length = rng.integers(length, config.terminal_compromise_days_max + 1, n)
    rows = _rows_in_windows(data, "terminal_id", terminals, first, length)
    events.append(
        _window_events("terminal_compromise", terminals, first, length, start_us, terminal=True)
    )
    rows = rows[~data["is_fraud"].to_numpy()[rows]]
    data = _label(data, rows, "terminal_compromise")
    if config.skimmed_card_share <= 0 or len(rows) == 0:
        return data
    return _skimmed_cards(data, rows, config, rng, start_us, events)


def _skimmed_cards(
    data: pd.DataFrame,
    skimmed_rows: np.ndarray,
    config: SyntheticConfig,
    rng: np.random.Generator,
    start_us: int,
    events: list[pd.DataFrame],
) -> pd.DataFrame:
    """Cards copied at a compromised terminal, misused from 1-`skim_delay_days` days later.

    One draw per customer, at the first payment of the compromise it made there (a customer
    skimmed twice is misused once). Rows of other patterns are left as they are.
    """
    day = (data["ts_us"].to_numpy() - start_us) // (SECONDS_PER_DAY * US_PER_SECOND)
    skims = pd.DataFrame(
        {"user": data["user_id"].to_numpy()[skimmed_rows], "day": day[skimmed_rows]}
    )
    first_skim = skims.groupby("user")["day"].min()
    misused = rng.random(len(first_skim)) < config.skimmed_card_share
    customers = first_skim.index.to_numpy()[misused]
    first = first_skim.to_numpy()[misused] + rng.integers(
        1, config.skim_delay_days + 1, int(misused.sum())
    )
    return _misuse_cards(data, customers, first, config, rng, start_us, events)


def _label(data: pd.DataFrame, rows: np.ndarray, pattern: str) -> pd.DataFrame:
    is_fraud = data["is_fraud"].to_numpy().copy()
    names = data["pattern"].to_numpy().copy()
    is_fraud[rows] = True
    names[rows] = pattern
    return data.assign(is_fraud=is_fraud, pattern=names)


def _new_rows(
    user_id: np.ndarray,
    terminal_id: np.ndarray,
    ts_us: np.ndarray,
    usd: np.ndarray,
    pattern: str,
    burst: np.ndarray,
) -> pd.DataFrame:
    """Injected fraud rows; `burst` numbers the pattern instance each row belongs to."""
    return pd.DataFrame(
        {
            "burst": burst.astype(np.int64),
            "user_id": user_id.astype(np.int64),
            "terminal_id": terminal_id.astype(np.int64),
            "ts_us": ts_us.astype(np.int64),
            "usd": usd,
            "is_fraud": True,
            "pattern": pattern,
        }
    )


def _random_moments(
    config: SyntheticConfig, rng: np.random.Generator, n: int, start_us: int
) -> np.ndarray:
    span = config.days * SECONDS_PER_DAY * US_PER_SECOND
    return start_us + rng.integers(0, span, n)


def _own_terminals(normal: pd.DataFrame, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A terminal each user has used (any terminal when the user has no transaction)."""
    seen = normal.groupby("user_id")["terminal_id"].first()
    fallback = rng.integers(0, max(1, int(normal["terminal_id"].max()) + 1), len(users))
    return np.where(np.isin(users, seen.index), seen.reindex(users).fillna(0), fallback)


def _large_amounts(
    normal: pd.DataFrame, config: SyntheticConfig, rng: np.random.Generator, start_us: int
) -> pd.DataFrame:
    n = _events(config, config.large_amount_rate, rng)
    users = rng.integers(0, config.customers, n)
    usd = np.round(rng.uniform(10_000.01, 60_000, n), 2)
    return _new_rows(
        users,
        _own_terminals(normal, users, rng),
        _random_moments(config, rng, n, start_us),
        usd,
        "large_amount",
        np.arange(n),
    )


def _grouped_payments(
    config: SyntheticConfig,
    rng: np.random.Generator,
    start_us: int,
    *,
    rate: float,
    sizes: tuple[int, int],
    span: tuple[float, float],
    unit_s: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user, time, event index) of the payments of grouped events (structuring, card testing):
    per event a user, a size in [sizes), a first moment and a span in [span) units of `unit_s`
    seconds."""
    events = _events(config, rate, rng)
    counts = rng.integers(*sizes, events)
    users = np.repeat(rng.integers(0, config.customers, events), counts)
    first = np.repeat(_random_moments(config, rng, events, start_us), counts)
    span_us = np.repeat(rng.uniform(*span, events) * unit_s * US_PER_SECOND, counts)
    ts = first + (rng.random(len(users)) * span_us).astype(np.int64)
    return users, ts, np.repeat(np.arange(events), counts)


def _structuring(
    normal: pd.DataFrame, config: SyntheticConfig, rng: np.random.Generator, start_us: int
) -> pd.DataFrame:
    users, ts, burst = _grouped_payments(
        config, rng, start_us, rate=config.structuring_rate, sizes=(2, 6), span=(1, 48), unit_s=3600
    )
    usd = np.round(rng.uniform(9_000, 9_990, len(users)), 2)
    return _new_rows(users, _own_terminals(normal, users, rng), ts, usd, "structuring", burst)


def _card_testing(
    normal: pd.DataFrame, config: SyntheticConfig, rng: np.random.Generator, start_us: int
) -> pd.DataFrame:
    users, ts, burst = _grouped_payments(
        config, rng, start_us, rate=config.card_testing_rate, sizes=(6, 26), span=(2, 20), unit_s=60
    )
    terminals = rng.integers(0, config.terminals, len(users))
    usd = np.round(rng.uniform(0.5, 5.0, len(users)), 2)
    return _new_rows(users, terminals, ts, usd, "card_testing", burst)


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


def write_dataset(
    data: SyntheticData,
    directory: Path,
    *,
    name: str = "synthetic",
    progress: Progress = _no_progress,
) -> tuple[Path, Path]:
    """Write `<name>_transactions.csv` (import format), `<name>_labels.csv` and
    `<name>_events.csv` (the pattern instances with start and end); returns the first two.

    The transactions and labels are written `WRITE_CHUNK_ROWS` at a time, each chunk told to
    `progress(rows written, both files' rows)`."""
    directory.mkdir(parents=True, exist_ok=True)
    tx_path = directory / f"{name}_transactions.csv"
    labels_path = directory / f"{name}_labels.csv"
    data.events.assign(start=_iso(data.events["start"]), end=_iso(data.events["end"])).to_csv(
        directory / f"{name}_events.csv",
        index=False,
        columns=list(EVENT_COLUMNS),
        lineterminator="\n",
    )
    total = len(data.transactions) + len(data.labels)
    written = 0
    progress(written, total)
    for frame, path, columns, moment in (
        (data.transactions, tx_path, TRANSACTION_COLUMNS, "occurred_at"),
        (data.labels, labels_path, LABEL_COLUMNS, "labelled_at"),
    ):
        for offset in range(0, max(len(frame), 1), WRITE_CHUNK_ROWS):
            chunk = frame.iloc[offset : offset + WRITE_CHUNK_ROWS]
            chunk.assign(**{moment: _iso(chunk[moment])}).to_csv(
                path,
                mode="w" if offset == 0 else "a",
                header=offset == 0,
                index=False,
                columns=list(columns),
                lineterminator="\n",
                quoting=csv.QUOTE_MINIMAL,
            )
            written += len(chunk)
            progress(written, total)
    return tx_path, labels_path


def _iso(moments: pd.Series) -> pd.Series:
    return moments.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
