"""The fraud patterns a synthetic data set injects into its normal traffic (`fraud.synthetic`).

Each pattern draws its instances from the configuration's rate per customer-day, labels its
rows with `is_fraud=1` and its name, and records each instance's start and end as an event;
the module docstring of `fraud.synthetic` says what each pattern is and why. Every draw comes
from the one generator `fraud.synthetic.generate` passes in, in the order it calls them, so a
configuration still gives the same data byte for byte.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ledgerguard.fraud.engine.windows import SECONDS_PER_DAY, US_PER_SECOND

if TYPE_CHECKING:
    from ledgerguard.fraud.synthetic import SyntheticConfig


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


def bursts_as_events(rows: pd.DataFrame) -> pd.DataFrame:
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


def spending_anomaly(
    normal: pd.DataFrame,
    config: SyntheticConfig,
    rng: np.random.Generator,
    start_us: int,
    events: list[pd.DataFrame],
) -> pd.DataFrame:
    """`normal` with compromised cards drawn at `compromised_customer_rate` (`_misuse_cards`);
    their events are appended to `events`."""
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


def terminal_compromise(
    data: pd.DataFrame,
    config: SyntheticConfig,
    rng: np.random.Generator,
    start_us: int,
    events: list[pd.DataFrame],
) -> pd.DataFrame:
    """`data` with compromised terminals drawn at `compromised_terminal_rate`: every payment on
    one during its compromise is fraud, and with `skimmed_card_share` its customers' cards are
    misused elsewhere afterwards (`_skimmed_cards`); events appended to `events`."""
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


def large_amounts(
    normal: pd.DataFrame, config: SyntheticConfig, rng: np.random.Generator, start_us: int
) -> pd.DataFrame:
    """New single payments of 10,000.01-60,000 USD at the customer's own terminals."""
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


def structuring(
    normal: pd.DataFrame, config: SyntheticConfig, rng: np.random.Generator, start_us: int
) -> pd.DataFrame:
    """New groups of 2-5 payments of 9,000-9,990 USD by one customer within 1-48 hours."""
    users, ts, burst = _grouped_payments(
        config, rng, start_us, rate=config.structuring_rate, sizes=(2, 6), span=(1, 48), unit_s=3600
    )
    usd = np.round(rng.uniform(9_000, 9_990, len(users)), 2)
    return _new_rows(users, _own_terminals(normal, users, rng), ts, usd, "structuring", burst)


def card_testing(
    normal: pd.DataFrame, config: SyntheticConfig, rng: np.random.Generator, start_us: int
) -> pd.DataFrame:
    """New bursts of 6-25 charges of 0.50-5.00 USD within 2-20 minutes on random terminals."""
    users, ts, burst = _grouped_payments(
        config, rng, start_us, rate=config.card_testing_rate, sizes=(6, 26), span=(2, 20), unit_s=60
    )
    terminals = rng.integers(0, config.terminals, len(users))
    usd = np.round(rng.uniform(0.5, 5.0, len(users)), 2)
    return _new_rows(users, terminals, ts, usd, "card_testing", burst)
