"""The terminal history every path shares, and how it is built in memory.

`TerminalHistory` holds daily payment and confirmed-fraud counts per terminal, who was
defrauded where (the fraud-customer table, `FRAUD_CUSTOMER_COLUMNS`) and, with
`terminal_profile_features`, the terminal profile (`PROFILE_COLUMNS`). Training, the
evaluation and the tests build it here from a frame in memory (`history_in_memory`, over the
daily tables of `engine.terminal_days` and the fraud-customer table made here); the
nightly run, the backtest and the scorer's snapshot read the same tables from the replica
(`fraud.terminal_tables`, `fraud.terminal_profile`), and the scorer keeps them up to date
(`realtime.terminal_counts`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ledgerguard.fraud.engine.survival import CompromiseDurations, fraud_runs, run_customers
from ledgerguard.fraud.engine.terminal_days import PROFILE_COLUMNS, terminal_days
from ledgerguard.fraud.engine.windows import SECONDS_PER_DAY, US_PER_SECOND, expand_ranges
from ledgerguard.fraud.errors import FraudAnalysisError
from ledgerguard.settings.fraud import FraudParameters

_DAY_BITS = 22  # terminal-day keys: rank << 22 | day offset (11,000 years of days)


#: Columns of a fraud-customer table: confirmed frauds per (terminal, customer, day).
FRAUD_CUSTOMER_COLUMNS = ("terminal_id", "user_id", "day", "n_fraud")

#: Optional column of a fraud-customer table: the day (since 1970-01-01 UTC) its labels became
#: known. Only `TerminalHistory.early_fraud_customers` reads it: without it no fraud counts as
#: known before the label delay (the engine's assumption: labels come `label_delay_days` late).
LABELLED_DAY = "labelled_day"

#: A labelled day later than any scoring day: "not known early".
_NEVER = 1 << 40


def labelled_days_of(labelled_at: pd.Series) -> np.ndarray:
    """The `LABELLED_DAY` of labels from their `labelled_at` text (ISO 8601, as the generator
    and the importer write it); a missing or empty one never counts as early."""
    if pd.api.types.is_datetime64_any_dtype(labelled_at):
        moments = pd.to_datetime(labelled_at, utc=True)
    else:
        text = labelled_at.astype("string").replace("", None)
        moments = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
    nanoseconds = moments.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    days = nanoseconds // (SECONDS_PER_DAY * 1_000_000_000)
    return np.where(moments.isna().to_numpy(), _NEVER, days)


def empty_fraud_customers() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype="int64") for name in FRAUD_CUSTOMER_COLUMNS})


def fraud_customer_days(
    frame: pd.DataFrame, fraud_ids: np.ndarray, labelled_days: np.ndarray | None = None
) -> pd.DataFrame:
    """The fraud-customer table of a transaction frame in memory (the replica's SQL elsewhere).

    With `labelled_days` (the day each of `fraud_ids` was labelled, same order), also the
    `LABELLED_DAY` column, one row per (terminal, customer, day, labelled day).
    """
    ids = frame["transaction_id"].to_numpy()
    fraud = np.isin(ids, fraud_ids) & (frame["terminal_id"].to_numpy() >= 0)
    rows = pd.DataFrame(
        {
            "terminal_id": frame["terminal_id"].to_numpy()[fraud],
            "user_id": frame["user_id"].to_numpy()[fraud],
            "day": frame["ts_us"].to_numpy()[fraud] // (SECONDS_PER_DAY * US_PER_SECOND),
            "n_fraud": np.ones(int(fraud.sum()), dtype=np.int64),
        }
    )
    if labelled_days is None:
        return add_fraud_customers([rows])
    known = pd.Series(np.asarray(labelled_days, dtype=np.int64), index=np.asarray(fraud_ids))
    rows[LABELLED_DAY] = known[~known.index.duplicated()].reindex(ids[fraud]).to_numpy()
    keys = [*FRAUD_CUSTOMER_COLUMNS[:3], LABELLED_DAY]
    return rows.groupby(keys, as_index=False)["n_fraud"].sum()[[*FRAUD_CUSTOMER_COLUMNS, *keys[3:]]]


def add_fraud_customers(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """Fraud-customer tables (or changes to one: -1 for a label withdrawn) added up (without
    `LABELLED_DAY`: the streaming scorer's sums, whose labels have all arrived)."""
    table = pd.concat(tables, ignore_index=True) if tables else empty_fraud_customers()
    keys = list(FRAUD_CUSTOMER_COLUMNS[:3])
    summed = table.groupby(keys, as_index=False)["n_fraud"].sum()
    return summed[summed["n_fraud"] != 0].astype("int64").reset_index(drop=True)


class TerminalHistory:
    """Daily transaction and confirmed-fraud counts per terminal, queried by window.

    Built once per run from `(terminal_id, day, n_tx, n_fraud)` rows (day = days since
    1970-01-01 UTC) and shared by every page, so terminal features see all users' transactions
    even when the analysis is split by user. With the `PROFILE_COLUMNS` too (payments by
    customers new to the terminal, sum and sum of squares of log USD amounts) it also answers
    `profile`: the terminal's own recent customers and amounts. With a fraud-customer table
    (`FRAUD_CUSTOMER_COLUMNS`: confirmed frauds per terminal, customer and day) it also tells
    how many customers were defrauded at a terminal over days (`run_customers`), which
    `terminal_compromise_min_customers` needs; without one (None) it refuses to guess. With
    the table's `LABELLED_DAY` it also tells which frauds after the label horizon were
    confirmed early (`early_frauds`).
    """

    def __init__(self, days: pd.DataFrame, frauds: pd.DataFrame | None = None) -> None:
        days = days.sort_values(["terminal_id", "day"], kind="stable")
        terminal = days["terminal_id"].to_numpy(dtype=np.int64)
        day = days["day"].to_numpy(dtype=np.int64)
        # the fraud table's terminals too: one whose early confirmed frauds come after the
        # daily counts' end (a new terminal's first days) still has them
        extra = [] if frauds is None else [frauds["terminal_id"].to_numpy(dtype=np.int64)]
        self.terminals = np.unique(np.concatenate([terminal, *extra]))
        rank = np.searchsorted(self.terminals, terminal)
        self.day_origin = int(day.min()) if len(day) else 0
        self.key = (rank.astype(np.int64) << _DAY_BITS) + (day - self.day_origin)
        self.has_profile = all(name in days for name in PROFILE_COLUMNS)
        names = ("n_tx", "n_fraud", *(PROFILE_COLUMNS if self.has_profile else ()))
        self._prefix = {
            name: np.concatenate(([0], np.cumsum(days[name].to_numpy()))) for name in names
        }
        # `compromise_durations` per (horizon day, look-back): the history never changes after
        # construction (the scorer builds a new one when its counts change), so neither do they
        self._durations: dict[tuple[int, int, float, int], CompromiseDurations] = {}
        self._frauds = None if frauds is None else self._fraud_index(frauds)
        # the frauds labelled within `days` of their payment, per `days` (see `_early_frauds`)
        self._early: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._early_users: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _fraud_index(self, frauds: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(terminal-day key, customer, labelled day) of each row of a fraud-customer table,
        sorted by key: who had confirmed fraud at which terminal on which day, known since
        when (`_NEVER` without `LABELLED_DAY`). Fraud rows are few (a few per cent of the
        payments), so this costs little next to the daily counts."""
        frauds = frauds[frauds["n_fraud"] > 0]
        terminal = frauds["terminal_id"].to_numpy(dtype=np.int64)
        if len(self.terminals) == 0:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        pos = np.searchsorted(self.terminals, terminal).clip(0, len(self.terminals) - 1)
        known = self.terminals[pos] == terminal
        offset = frauds["day"].to_numpy(dtype=np.int64) - self.day_origin
        known &= offset >= 0
        key = (pos[known].astype(np.int64) << _DAY_BITS) + offset[known]
        order = np.argsort(key, kind="stable")
        if LABELLED_DAY in frauds:
            labelled = frauds[LABELLED_DAY].to_numpy(dtype=np.int64)[known][order]
        else:
            labelled = np.full(len(key), _NEVER, dtype=np.int64)
        return key[order], frauds["user_id"].to_numpy(dtype=np.int64)[known][order], labelled

    @classmethod
    def empty(cls) -> TerminalHistory:
        return cls(
            pd.DataFrame({"terminal_id": [], "day": [], "n_tx": [], "n_fraud": []}),
            empty_fraud_customers(),
        )

    def sums(
        self,
        names: tuple[str, ...],
        terminal_id: np.ndarray,
        day: np.ndarray,
        *,
        days: int,
        lag: int,
    ) -> list[np.ndarray]:
        """Sums of daily columns per terminal over the `days` days up to day - `lag`:
        [day - lag - days + 1, day - lag]."""
        if len(self.terminals) == 0:
            return [np.zeros(len(terminal_id), dtype=np.int64) for _ in names]
        pos = np.searchsorted(self.terminals, terminal_id).clip(0, len(self.terminals) - 1)
        found = self.terminals[pos] == terminal_id
        limit = (1 << _DAY_BITS) - 1
        first = (day - lag - days + 1 - self.day_origin).clip(0, limit)
        stop = (day - lag + 1 - self.day_origin).clip(0, limit)
        base = pos.astype(np.int64) << _DAY_BITS
        lo = np.searchsorted(self.key, base + first, side="left")
        hi = np.searchsorted(self.key, base + stop, side="left")
        return [
            np.where(found, self._prefix[name][hi] - self._prefix[name][lo], 0) for name in names
        ]

    def entries(
        self,
        names: tuple[str, ...],
        terminal_id: np.ndarray,
        *,
        first: np.ndarray,
        stop: np.ndarray,
    ) -> tuple[np.ndarray, ...]:
        """The daily entries of each query's terminal on days [first, stop): (query index,
        day, then one array per column of `names`), flat, one element per entry."""
        if len(self.terminals) == 0 or len(terminal_id) == 0:
            empty = np.zeros(0, dtype=np.int64)
            return (empty, empty, *(empty for _ in names))
        owner, entry = self._gather(self.key, terminal_id, first, stop)
        day = (self.key[entry] & ((1 << _DAY_BITS) - 1)) + self.day_origin
        return (owner, day, *self._daily(names, entry))

    def _gather(
        self, key: np.ndarray, terminal_id: np.ndarray, first: np.ndarray, stop: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(query index, position in `key`) of every entry of each query's terminal on days
        [first, stop), `key` sorted by terminal rank then day: two binary searches a query."""
        pos = np.searchsorted(self.terminals, terminal_id).clip(0, len(self.terminals) - 1)
        found = self.terminals[pos] == terminal_id
        limit = (1 << _DAY_BITS) - 1
        base = pos.astype(np.int64) << _DAY_BITS
        lo = np.searchsorted(key, base + (first - self.day_origin).clip(0, limit), "left")
        hi = np.searchsorted(key, base + (stop - self.day_origin).clip(0, limit), "left")
        return expand_ranges(lo, np.where(found, hi - lo, 0))

    def _daily(self, names: tuple[str, ...], entry: np.ndarray) -> list[np.ndarray]:
        """The daily values of `names` at history entries `entry` (from the prefix sums)."""
        return [self._prefix[name][entry + 1] - self._prefix[name][entry] for name in names]

    def compromise_durations(
        self, horizon: int, days: int, *, min_share: float, min_customers: int = 1
    ) -> CompromiseDurations:
        """How long terminal compromises lasted, from every terminal's days (horizon - days,
        horizon] (`engine.survival`): one estimate per label horizon, shared by its rows.
        Only runs with at least `min_customers` defrauded customers count (1: every run)."""
        cache_key = (horizon, days, min_share, min_customers)
        cached = self._durations.get(cache_key)
        if cached is not None:
            return cached
        limit = (1 << _DAY_BITS) - 1
        day = (self.key & limit) + self.day_origin
        inside = np.flatnonzero((day > horizon - days) & (day <= horizon))
        n_tx, n_fraud = self._daily(("n_tx", "n_fraud"), inside)
        runs = fraud_runs(
            self.key[inside] >> _DAY_BITS, day[inside], n_tx, n_fraud, min_share=min_share
        )
        if min_customers > 1:
            key, user, _ = self._fraud_customers()
            customers = run_customers(runs, key >> _DAY_BITS, (key & limit) + self.day_origin, user)
            runs = runs.where(customers >= min_customers)
        durations = CompromiseDurations.estimate(runs)
        self._durations[cache_key] = durations
        return durations

    def run_customers(
        self, terminal_id: np.ndarray, *, first: np.ndarray, stop: np.ndarray
    ) -> np.ndarray:
        """Distinct customers with confirmed fraud on each query's terminal on days
        [first, stop): two binary searches per query, then the few fraud entries found."""
        key, user, _ = self._fraud_customers()
        n = len(terminal_id)
        if len(key) == 0 or n == 0:
            return np.zeros(n, dtype=np.int64)
        owner, entry = self._gather(key, terminal_id, first, stop)
        return _distinct_per_query(owner, user[entry], n)

    def early_frauds(
        self, terminal_id: np.ndarray, day: np.ndarray, user_id: np.ndarray, *, days: int
    ) -> EarlyFrauds:
        """Customers other than `user_id` with fraud at each query's terminal on the `days`
        days up to `day` ([day - days + 1, day], after a label horizon `days` back) whose
        label was known by `day`: fraud confirmed before the label delay (an analyst's
        decision, an early chargeback), with the first and last day of those payments (when
        the compromise they show was going on). None without a fraud-customer table or its
        `LABELLED_DAY`. Only frauds labelled less than `days` days after their payment can
        count; they are few (none where every label comes `days` late), so this usually
        costs nothing."""
        n = len(terminal_id)
        key, user, labelled = self._early_frauds(days)
        if len(key) == 0 or n == 0:
            return EarlyFrauds.none(n)
        owner, entry = self._gather(key, terminal_id, day - days + 1, day + 1)
        keep = (labelled[entry] <= day[owner]) & (user[entry] != user_id[owner])
        owner, entry = owner[keep], entry[keep]
        card = self._defrauded_elsewhere(entry, day[owner], days=days)
        owner, entry = owner[~card], entry[~card]
        paid = (key[entry] & ((1 << _DAY_BITS) - 1)) + self.day_origin
        early = EarlyFrauds.none(n)
        np.minimum.at(early.first_day, owner, paid)
        np.maximum.at(early.last_day, owner, paid)
        return EarlyFrauds(_distinct_per_query(owner, user[entry], n), *early.days)

    def _defrauded_elsewhere(self, entry: np.ndarray, day: np.ndarray, *, days: int) -> np.ndarray:
        """Per early fraud `entry` (of `_early_frauds(days)`) seen from `day`: whether its
        customer also had early confirmed fraud at another terminal in the same days ([day -
        days + 1, day], labelled by `day`). Such a customer's card was stolen, and its misuse
        at this terminal says nothing about the terminal: a compromised terminal defrauds the
        customers who pay there, a stolen card is misused wherever it is taken (a count
        without this flagged busy shops where two stolen cards were used within a week;
        session 20)."""
        if len(entry) == 0:
            return np.zeros(0, dtype=bool)
        key, user, labelled = self._early_frauds(days)
        order, by_user = self._early_by_user(days)
        mask = (1 << _DAY_BITS) - 1
        base = user[entry] << _DAY_BITS
        lo = np.searchsorted(by_user, base + (day - days + 1 - self.day_origin).clip(0, mask))
        hi = np.searchsorted(by_user, base + (day + 1 - self.day_origin).clip(0, mask))
        pair, position = expand_ranges(lo, hi - lo)
        other = order[position]
        elsewhere = ((key[other] >> _DAY_BITS) != (key[entry[pair]] >> _DAY_BITS)) & (
            labelled[other] <= day[pair]
        )
        return np.bincount(pair[elsewhere], minlength=len(entry)) > 0

    def _early_by_user(self, days: int) -> tuple[np.ndarray, np.ndarray]:
        """The early frauds of `_early_frauds(days)` in (customer, day) order: their positions
        and the sorted customer-day keys."""
        cached = self._early_users.get(days)
        if cached is None:
            key, user, _ = self._early_frauds(days)
            by_user = (user << _DAY_BITS) + (key & ((1 << _DAY_BITS) - 1))
            order = np.argsort(by_user, kind="stable")
            cached = self._early_users[days] = (order, by_user[order])
        return cached

    def _early_frauds(self, days: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The fraud index's rows labelled less than `days` days after their payment day."""
        cached = self._early.get(days)
        if cached is not None:
            return cached
        if self._frauds is None:
            empty = np.zeros(0, dtype=np.int64)
            early = (empty, empty, empty)
        else:
            key, user, labelled = self._frauds
            paid = (key & ((1 << _DAY_BITS) - 1)) + self.day_origin
            soon = labelled - paid < days
            early = (key[soon], user[soon], labelled[soon])
        self._early[days] = early
        return early

    def _fraud_customers(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._frauds is None:
            raise FraudAnalysisError(
                "terminal_compromise_min_customers > 1 needs the terminal history's fraud "
                "customers: build it with history_in_memory, the replica's terminal_tables "
                "or TerminalCounts(frauds=...)"
            )
        return self._frauds

    def window(
        self, terminal_id: np.ndarray, day: np.ndarray, *, days: int, lag: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(transactions, frauds) on each terminal over the `days` days up to day - `lag`."""
        n_tx, n_fraud = self.sums(("n_tx", "n_fraud"), terminal_id, day, days=days, lag=lag)
        return n_tx, n_fraud


#: The day of an `EarlyFrauds` query without any (no payment is that far from the epoch).
NO_DAY = 1 << 40


@dataclass(frozen=True)
class EarlyFrauds:
    """Per query of `TerminalHistory.early_frauds`: the other customers with early confirmed
    fraud at the terminal, and the first and last day of those frauds (`NO_DAY` and
    `-NO_DAY` for none)."""

    customers: np.ndarray
    first_day: np.ndarray
    last_day: np.ndarray

    @classmethod
    def none(cls, n: int) -> EarlyFrauds:
        return cls(
            np.zeros(n, dtype=np.int64),
            np.full(n, NO_DAY, dtype=np.int64),
            np.full(n, -NO_DAY, dtype=np.int64),
        )

    @property
    def days(self) -> tuple[np.ndarray, np.ndarray]:
        return self.first_day, self.last_day


def _distinct_per_query(owner: np.ndarray, user: np.ndarray, n: int) -> np.ndarray:
    """Distinct `user` values per query index `owner` (0..n-1)."""
    if len(owner) == 0:
        return np.zeros(n, dtype=np.int64)
    span = int(user.max()) + 1
    pairs = np.unique(owner.astype(np.int64) * span + user)
    return np.bincount(pairs // span, minlength=n).astype(np.int64)


def history_in_memory(
    frame: pd.DataFrame,
    fraud_ids: np.ndarray,
    params: FraudParameters,
    labelled_days: np.ndarray | None = None,
) -> TerminalHistory:
    """The `TerminalHistory` of a labelled frame in memory: `terminal_days` and who was
    defrauded where (`fraud_customer_days`, with when each label became known if
    `labelled_days` is given), as the nightly run reads them from the replica."""
    return TerminalHistory(
        terminal_days(frame, fraud_ids, params),
        fraud_customer_days(frame, fraud_ids, labelled_days),
    )
