"""Terminal counts of the streaming scorer: transactions and confirmed frauds per (terminal, day).

Counted for *every* user (terminals are shared across partitions), as `TerminalHistory`
expects. `terminal_risk` of a transaction on day D reads days up to D - `label_delay_days`
(the stream's parameters, `FraudParameters.at_payment_time`: one day older than the nightly
run's horizon, since day D - delay is not fully labelled while D goes on), so the counts of
today never matter today: the history object is rebuilt only when a count that a batch can
see has changed (a label arrived, a back-dated transaction, or the day rolled over). A label
of the last `early_label_days` days is seen at once: fraud confirmed before the label delay
(`TerminalHistory.early_fraud_customers`; every label the stream holds has arrived: known
since its payment's day, so it is early if its payment is among those days).

Its own module because it is the half of the state that is not the partition's: the user
windows (`state.OnlineState`) hold one partition's users, these counts everyone's, updated
and rebuilt on their own schedule.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from ledgerguard.fraud.engine.terminal_days import add_profiles, with_profile
from ledgerguard.fraud.engine.terminal_history import (
    LABELLED_DAY,
    TerminalHistory,
    add_fraud_customers,
    empty_fraud_customers,
)
from ledgerguard.realtime.revision import revision_days
from ledgerguard.settings.fraud import FraudParameters

#: `profile_of(first_day, stop_day)`: the terminal profile (`terminal_days.terminal_profile_days`
#: over every user) of days [first_day, stop_day), read from the replica.
ProfileLoader = Callable[[int, int], pd.DataFrame]


class TerminalCounts:
    """(terminal, day) -> transactions, confirmed frauds; `history()` for the engine.

    The confirmed frauds are kept per customer too ((terminal, customer, day), the
    `terminal_history.FRAUD_CUSTOMER_COLUMNS` table), as the nightly run reads them from the replica:
    `terminal_compromise_min_customers` counts the customers defrauded at a terminal.

    With the terminal profile on (`profile_of` given), also the profile of the finished days:
    a transaction of day D reads the profile of days before D only, which changes only when
    the day rolls over, so the profile of each finished day is read once — from the replica,
    by the nightly run's own function over every user (a scorer partition holds only its own
    users' windows), which blocks the stream for that read once a day.
    """

    def __init__(
        self,
        days: pd.DataFrame,
        params: FraudParameters,
        *,
        frauds: pd.DataFrame | None = None,
        profile: pd.DataFrame | None = None,
        profile_through: int | None = None,
        profile_of: ProfileLoader | None = None,
    ) -> None:
        self._params = params
        self._base = days[["terminal_id", "day", "n_tx", "n_fraud"]].copy()
        self._delta: dict[tuple[int, int], list[int]] = {}
        self._frauds = frauds  # None: customers unknown (the history then has none either)
        self._fraud_delta: dict[tuple[int, int, int], int] = {}
        self._changed_from_day: int | None = None  # earliest day changed since the last build
        self._profile = profile
        self._profile_through = profile_through  # last day whose profile is complete
        self._profile_of = profile_of
        self._history = self._build()
        self.rebuilds = 0

    @classmethod
    def empty(cls, params: FraudParameters) -> TerminalCounts:
        return cls(
            pd.DataFrame({"terminal_id": [], "day": [], "n_tx": [], "n_fraud": []}),
            params,
            frauds=empty_fraud_customers(),
        )

    def add(
        self,
        terminal_id: int,
        day: int,
        *,
        n_tx: int = 0,
        n_fraud: int = 0,
        user_id: int | None = None,
    ) -> None:
        """Count transactions, or (with the customer's `user_id`) confirmed frauds."""
        if n_fraud and user_id is None:
            raise ValueError("a confirmed fraud is counted with its customer's user_id")
        if not (n_tx or n_fraud):
            return  # nothing changes: the history stays valid (no rebuild)
        counts = self._delta.setdefault((terminal_id, day), [0, 0])
        counts[0] += n_tx
        counts[1] += n_fraud
        if n_fraud and self._frauds is not None:
            key = (terminal_id, int(user_id), day)  # type: ignore[arg-type]
            self._fraud_delta[key] = self._fraud_delta.get(key, 0) + n_fraud
        if self._changed_from_day is None or day < self._changed_from_day:
            self._changed_from_day = day

    def history(self, *, newest_day: int) -> TerminalHistory:
        """The history, rebuilt first if a change is visible to a transaction of `newest_day`."""
        changed = self._changed_from_day
        stale_profile = self._profile_through is not None and self._profile_through < newest_day - 1
        # a label of the early days: `early_fraud_customers` reads it at once
        before = newest_day - self._params.early_label_days
        early = any(day > before for _, _, day in self._fraud_delta)
        if (
            stale_profile
            or early
            or (changed is not None and changed <= newest_day - self._params.label_delay_days)
        ):
            self._rebuild(newest_day)
        return self._history

    def _build(self) -> TerminalHistory:
        frauds = self._frauds
        if frauds is not None:  # the labels held here have all arrived: known from their day
            frauds = frauds.assign(**{LABELLED_DAY: frauds["day"]})
        if self._profile is None:
            return TerminalHistory(self._base, frauds)
        return TerminalHistory(with_profile(self._base, self._profile), frauds)

    def _rebuild(self, newest_day: int) -> None:
        delta = pd.DataFrame(
            [(t, d, c[0], c[1]) for (t, d), c in self._delta.items()],
            columns=["terminal_id", "day", "n_tx", "n_fraud"],
        )
        merged = pd.concat([self._base, delta], ignore_index=True)
        merged = merged.groupby(["terminal_id", "day"], as_index=False)[["n_tx", "n_fraud"]].sum()
        # the days that the rows the stream may still revise (a few days old) read
        oldest = newest_day - self._params.terminal_read_days - revision_days(self._params)
        self._base = merged[merged["day"] >= oldest].reset_index(drop=True)
        self._delta.clear()
        fraud_delta = pd.DataFrame(
            [(t, u, d, n) for (t, u, d), n in self._fraud_delta.items()],
            columns=["terminal_id", "user_id", "day", "n_fraud"],
        )
        if self._frauds is not None:
            frauds = add_fraud_customers([self._frauds, fraud_delta])
            self._frauds = frauds[frauds["day"] >= oldest].reset_index(drop=True)
        self._fraud_delta.clear()
        self._changed_from_day = None
        if self._profile is not None and self._profile_through is not None:
            if self._profile_of is not None and self._profile_through < newest_day - 1:
                fresh = self._profile_of(self._profile_through + 1, newest_day)
                self._profile = add_profiles([self._profile, fresh])
                self._profile_through = newest_day - 1
            first = newest_day - self._params.terminal_profile_days - revision_days(self._params)
            self._profile = self._profile[self._profile["day"] >= first].reset_index(drop=True)
        self._history = self._build()
        self.rebuilds += 1
