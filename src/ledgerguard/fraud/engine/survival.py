"""How long terminal compromises last on this platform, learnt from its own confirmed fraud.

Why: `terminal_risk` fires while the latest labelled day of a terminal still had fraud. Labels
arrive `label_delay_days` late, so after a compromise ends the rule keeps flagging the
terminal's legitimate customers for that many days (round 6: 83 of 178 false alarms on held-out
seed 505; on the hidden set 42 % of its alerts). The labels cannot show the end, but the
platform has seen earlier compromises end: if they all lasted about four weeks, a run of fraud
that is already 27 days old at the label horizon has probably ended by the transaction's day,
eight days later. So the engine estimates the distribution of a compromise's length D from the
terminal history it already reads, and gives each transaction on a terminal with an ongoing run
P(the run still goes on at the transaction's day | it lasted r days by the horizon).

Choices (each a decision, written down so it can be revisited):

* **A run** is a terminal's consecutive *compromised days* among its labelled days with
  payments: days without payments neither end nor extend it (a quiet shop is not a clean one),
  and the first day with payments of which less than `terminal_risk_threshold` were confirmed
  fraud ends it. A compromised day is one where at least that share of the payments were
  confirmed fraud: the share at which the rule itself calls a terminal risky. Its length counts
  from its first compromised day to its end.
* **The end of an ended run is known to a few days** (session 14): the compromise ended
  somewhere from its last compromised day to the day before the clean day that ended it (days
  without payments between them may have been compromised too). Each ended run counts half at
  each end of that interval. A transaction's own question is whether the compromise goes on
  at *its* day, one with a payment, so counting the last fraud day only learnt lengths too
  short where a terminal sees about one payment a day (2.0 terminals per customer): the last
  day of a 28-day compromise was missed on 5-14 payments a run (dev seeds 12-13). At a busy
  terminal both ends are the same day.
* **Why a share, not "any fraud"** (measured on dev seed 12, 0.5 terminals per customer): with
  any confirmed fraud making a fraud day, 85 % of the runs of two days or more were two-to-five
  day runs of a stolen card's payments at its owner's usual shops, where most payments stay
  legitimate; "compromises last 2-5 days" then calmed the rule on the first days a real
  compromise became visible (rules-only terminal recall 0.654 -> 0.596). A compromised
  terminal's days are mostly fraud, a stolen card's shop's are not.
* **Only runs with at least `terminal_compromise_min_customers` defrauded customers count**
  (distinct customers with confirmed fraud at the terminal on the run's days). A compromised
  terminal defrauds whoever pays there; a stolen card is misused at its owner's usual shops,
  and where a shop sees about one payment a day (2.0 terminals per customer) its 2-5 fraud days
  there form a "run" of share 1 that ends within days. Counted as compromises, those short
  runs taught "compromises end after a few days" and calmed the rule on young real ones
  (round 7a: rules-only terminal recall 0.629 -> 0.489 on dev seed 12 at 2.0). The same
  test decides whether a terminal's *current* run is a compromise (`terminal_features`: the rule does
  not fire on a stolen card's shop). 1: every run counts (round 7a).
* **Only runs of at least `MIN_RUN_DAYS` days count.** A single day is what one stolen card's
  payment leaves at a quiet terminal (card testing, compromised cards, large amounts); the
  rule needs `terminal_min_frauds` anyway.
* **Censoring**: a run still open at the horizon is right-censored at its length (it lasted at
  least that long); Kaplan-Meier handles those, so long compromises that are still running are
  not forgotten. A run whose start is not seen (no clean day before it inside the look-back) is
  left out: its length is unknown.
* **Causal, per row**: the estimate for a transaction uses only the history days up to its own
  label horizon (`label_delay_days` before its day; the streaming scorer's is a day older,
  `FraudParameters.at_payment_time`) and `terminal_compromise_history_days` back: exactly the
  labels the other terminal features may read, so the nightly run, the backtest, the
  evaluation and training give the same number, and the stream the same at its horizon. One
  estimate per horizon day (all terminals together), memoised by the `TerminalHistory`.
* **Too few completed runs** (`terminal_compromise_min_runs`): no estimate (NaN), the rule is
  as before.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Shortest run (first to last fraud day, in days) that counts as a terminal compromise.
MIN_RUN_DAYS = 2


@dataclass(frozen=True)
class FraudRuns:
    """Runs of fraud days whose start is known: length in days, whether they ended, and where
    (terminal rank, first and last fraud day) so their customers can be counted."""

    length: np.ndarray  # int64, first to last fraud day, >= MIN_RUN_DAYS
    ended: np.ndarray  # bool: a clean day with payments followed (else open at the horizon)
    terminal: np.ndarray  # int64: the terminal's rank (as passed to `fraud_runs`)
    first: np.ndarray  # int64: day of the first fraud day
    last: np.ndarray  # int64: day of the last fraud day
    #: int64, first fraud day to the day before that clean day (days without payments after
    #: the last fraud day may still have been compromised); `length` for an open run
    upper: np.ndarray

    @classmethod
    def none(cls) -> FraudRuns:
        empty = np.zeros(0, dtype=np.int64)
        return cls(empty, np.zeros(0, dtype=bool), empty, empty, empty, empty)

    def where(self, keep: np.ndarray) -> FraudRuns:
        """The runs selected by the boolean mask `keep`."""
        return FraudRuns(
            self.length[keep],
            self.ended[keep],
            self.terminal[keep],
            self.first[keep],
            self.last[keep],
            self.upper[keep],
        )


def run_customers(
    runs: FraudRuns, rank: np.ndarray, day: np.ndarray, user: np.ndarray
) -> np.ndarray:
    """Distinct customers with confirmed fraud on each run's terminal during the run.

    (`rank`, `day`, `user`): one entry per (terminal rank, day, customer) with confirmed fraud,
    in any order. Distinct customers do not add up across days, so the entries are matched to
    the runs (which never overlap on a terminal) and the (run, customer) pairs counted once.
    """
    if len(runs.length) == 0 or len(rank) == 0:
        return np.zeros(len(runs.length), dtype=np.int64)
    # runs come sorted by (terminal, first day); so does this key
    start = (runs.terminal << 32) + runs.first
    key = (rank.astype(np.int64) << 32) + day
    run = np.searchsorted(start, key, side="right") - 1
    inside = run >= 0
    inside[inside] = (runs.terminal[run[inside]] == rank[inside]) & (
        day[inside] <= runs.last[run[inside]]
    )
    users = user[inside].astype(np.int64)
    span = int(users.max()) + 1 if len(users) else 1
    pairs = np.unique(run[inside] * span + users)
    return np.bincount(pairs // span, minlength=len(runs.length)).astype(np.int64)


def fraud_runs(
    rank: np.ndarray,
    day: np.ndarray,
    n_tx: np.ndarray,
    n_fraud: np.ndarray,
    *,
    min_share: float,
) -> FraudRuns:
    """The runs of daily entries sorted by (terminal `rank`, `day`) (see module docstring):
    a day counts as fraud when at least `min_share` of its payments are confirmed fraud."""
    keep = (n_fraud > 0) | (n_tx > 0)
    rank, day = rank[keep], day[keep]
    fraud = (n_fraud[keep] > 0) & (n_fraud[keep] >= min_share * n_tx[keep])
    if len(rank) == 0:
        return FraudRuns.none()
    first_of_terminal = np.ones(len(rank), dtype=bool)
    first_of_terminal[1:] = rank[1:] != rank[:-1]
    last_of_terminal = np.roll(first_of_terminal, -1)
    last_of_terminal[-1] = True
    after_fraud = np.zeros(len(rank), dtype=bool)
    after_fraud[1:] = fraud[:-1]
    before_fraud = np.zeros(len(rank), dtype=bool)
    before_fraud[:-1] = fraud[1:]
    starts = np.flatnonzero(fraud & (first_of_terminal | ~after_fraud))
    ends = np.flatnonzero(fraud & (last_of_terminal | ~before_fraud))
    # an entry before the start of the same terminal is a clean day: the start is known;
    # an entry after the end is a clean day: the run ended
    known = ~first_of_terminal[starts]
    length = day[ends] - day[starts] + 1
    ended = ~last_of_terminal[ends]
    clean_day = day[np.minimum(ends + 1, len(day) - 1)]
    upper = np.where(ended, clean_day - day[starts], length)
    counted = known & (length >= MIN_RUN_DAYS)
    return FraudRuns(
        length[counted].astype(np.int64),
        ended[counted],
        rank[starts][counted].astype(np.int64),
        day[starts][counted].astype(np.int64),
        day[ends][counted].astype(np.int64),
        upper[counted].astype(np.int64),
    )


@dataclass(frozen=True)
class CompromiseDurations:
    """Kaplan-Meier estimate of a compromise's length D from `FraudRuns` (an ended run counts
    half at its `length`, half at its `upper`: module docstring).

    `at_least[k]` = P(D >= k) for k = 0, 1, ...; beyond the array the last value holds (no run
    was seen that long: the estimate stays where the data left it).
    """

    at_least: np.ndarray
    completed: int
    open: int

    @classmethod
    def estimate(cls, runs: FraudRuns) -> CompromiseDurations:
        if len(runs.length) == 0:
            return cls(np.ones(1), 0, 0)
        # an ended run's compromise ended between its last fraud day and the day before the
        # clean day that ended it: half a run at each (the same at busy terminals)
        size = int(runs.upper.max()) + 1
        ended_at = np.concatenate([runs.length[runs.ended], runs.upper[runs.ended]])
        events = np.bincount(ended_at, minlength=size) / 2
        leaving = events + np.bincount(runs.length[~runs.ended], minlength=size)
        at_risk = np.cumsum(leaving[::-1])[::-1]  # runs known to last at least t days
        with np.errstate(invalid="ignore", divide="ignore"):
            hazard = np.where(at_risk > 0, events / at_risk, 0.0)
        at_least = np.concatenate(([1.0], np.cumprod(1.0 - hazard)))
        return cls(at_least, int(runs.ended.sum()), int((~runs.ended).sum()))

    def _at_least(self, days: np.ndarray) -> np.ndarray:
        return self.at_least[np.clip(days, 0, len(self.at_least) - 1)]

    def active_probability(self, lasted: np.ndarray, reaches: np.ndarray) -> np.ndarray:
        """P(D >= reaches | D >= lasted) per row; 1 where no run was seen lasting `lasted`."""
        known = self._at_least(lasted)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(known > 0, self._at_least(reaches) / known, 1.0).clip(0.0, 1.0)

    def quantile(self, share: float) -> int | None:
        """Smallest k with P(D <= k) >= share (None: the estimate does not reach it)."""
        reached = np.flatnonzero(1.0 - self.at_least[1:] >= share - 1e-12)
        return int(reached[0]) if len(reached) else None

    def words(self) -> str:
        """'a median of 28 days (10-90 %: 2-28 days, 30 ended)', for an analyst."""
        median, low, high = self.quantile(0.5), self.quantile(0.1), self.quantile(0.9)
        longest = len(self.at_least) - 1
        if median is None:
            return f"more than {longest} days for half of them ({self.completed} ended)"
        if high is None:
            spread = f"{low} days or more"
        else:
            spread = f"{low} days" if low == high else f"{low}-{high} days"
        return f"a median of {median} days (10-90 %: {spread}, {self.completed} ended)"
