"""How long compromises last (`engine.survival`) and `terminal_risk` falling after it."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from ledgerguard.fraud.engine.survival import (
    CompromiseDurations,
    FraudRuns,
    fraud_runs,
    run_customers,
)
from ledgerguard.fraud.engine.terminal_features import ACTIVE_PROBABILITY
from ledgerguard.fraud.engine.terminal_history import (
    LABELLED_DAY,
    TerminalHistory,
    add_fraud_customers,
)
from ledgerguard.fraud.errors import FraudAnalysisError
from ledgerguard.settings.fraud import FraudParameters
from tests.unit.fraud.helpers import T0, fraud_customers_of, history_of, score_rows, verdict

TODAY = (T0 - T0.replace(year=1970, month=1, day=1)).days
HORIZON = TODAY - FraudParameters().label_delay_days


def _runs(ended: list[int], open_: list[int] = ()) -> FraudRuns:  # type: ignore[assignment]
    length = np.array([*ended, *open_], dtype=np.int64)
    where = np.arange(len(length), dtype=np.int64)
    return FraudRuns(
        length, np.array([True] * len(ended) + [False] * len(open_)), where, where, where, length
    )


def test_kaplan_meier_of_completed_runs_is_the_empirical_distribution():
    durations = CompromiseDurations.estimate(_runs([10, 20, 20, 30]))
    at_least = durations.at_least
    assert at_least[:11].tolist() == [1.0] * 11
    assert at_least[11:21] == pytest.approx([0.75] * 10)
    assert at_least[21:31] == pytest.approx([0.25] * 10)
    assert at_least[31] == 0.0
    assert (durations.completed, durations.open) == (4, 0)
    assert durations.words() == "a median of 20 days (10-90 %: 10-30 days, 4 ended)"


def test_a_run_still_open_counts_as_lasting_at_least_its_length():
    # ended at 10 and 20, one still open after 15 days: at 10, 1 of 3 ends; at 20, 1 of 1
    durations = CompromiseDurations.estimate(_runs([10, 20], [15]))
    assert durations.at_least[11:21] == pytest.approx([2 / 3] * 10)
    assert durations.at_least[21] == 0.0
    # a run that lasted 12 days reaches 18 (no run ended in between) but not 21
    p = durations.active_probability(np.array([12, 12, 5]), np.array([18, 21, 15]))
    assert p == pytest.approx([1.0, 0.0, 2 / 3])
    # without the open run, the 15-day run would not be at risk: the estimate changes
    assert CompromiseDurations.estimate(_runs([10, 20])).at_least[11] == pytest.approx(0.5)


def test_longer_than_every_run_seen_the_estimate_says_nothing():
    durations = CompromiseDurations.estimate(_runs([5, 6]))
    assert durations.active_probability(np.array([9]), np.array([20])).tolist() == [1.0]


def _days(rows: list[tuple[int, int, int, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["terminal_id", "day", "n_tx", "n_fraud"])


def _runs_of(days: pd.DataFrame, *, min_share: float) -> FraudRuns:
    columns = (days[name].to_numpy() for name in ("terminal_id", "day", "n_tx", "n_fraud"))
    return fraud_runs(*columns, min_share=min_share)


def test_fraud_runs_are_mostly_fraud_days_ended_by_a_clean_day_not_a_quiet_one():
    days = _days(
        [
            # terminal 1: clean, fraud on days 11, 12, (no payment 13), 14, clean 15: 4 days
            (1, 10, 3, 0),
            (1, 11, 2, 2),
            (1, 12, 1, 1),
            (1, 14, 2, 2),
            (1, 15, 4, 0),
            # terminal 2: fraud from its first entry on (start unknown): left out
            (2, 10, 1, 1),
            (2, 11, 1, 1),
            (2, 12, 1, 0),
            # terminal 3: clean, then fraud 12-13 still open at the end: censored at 2
            (3, 11, 5, 0),
            (3, 12, 1, 1),
            (3, 13, 1, 1),
            # terminal 4: one day of fraud (a stolen card, not a compromise): left out
            (4, 10, 5, 0),
            (4, 11, 1, 1),
            (4, 12, 5, 0),
            # terminal 5: a stolen card's payments at a busy shop on three days: mostly clean
            (5, 10, 9, 0),
            (5, 11, 9, 1),
            (5, 12, 9, 2),
            (5, 13, 9, 1),
            (5, 14, 9, 0),
        ]
    )
    runs = _runs_of(days, min_share=0.5)
    assert runs.length.tolist() == [4, 2]
    assert runs.ended.tolist() == [True, False]
    # with any fraud making a fraud day, the busy shop's three days are a run too
    assert _runs_of(days, min_share=0.0).length.tolist() == [4, 2, 3]


def test_a_run_ended_after_quiet_days_may_have_lasted_into_them():
    """The compromise ended between the last fraud day and the day before the clean day:
    half a run at each end of that interval (at a busy terminal both are the same day)."""
    days = _days(
        [
            # terminal 1: clean 10, fraud 11-20, no payment 21-22, clean 23: 10 to 12 days
            (1, 10, 3, 0),
            *((1, day, 1, 1) for day in range(11, 21)),
            (1, 23, 1, 0),
            # terminal 2: clean 10, fraud 11-20, clean 21 (busy): exactly 10 days
            (2, 10, 3, 0),
            *((2, day, 3, 3) for day in range(11, 21)),
            (2, 21, 3, 0),
        ]
    )
    runs = _runs_of(days, min_share=0.5)
    assert (runs.length.tolist(), runs.upper.tolist()) == ([10, 10], [12, 10])
    durations = CompromiseDurations.estimate(runs)
    # P(D >= k): 1 up to 10 days; 3 of the 4 halves end at 10, the last at 12
    assert durations.at_least[10:14] == pytest.approx([1.0, 0.25, 0.25, 0.0])
    assert durations.completed == 2


def _compromises(n: int, length: int, *, ended_by: int) -> list[tuple[int, int, int, int]]:
    """`n` terminals (100, 101, ...) each compromised for `length` days, over by `ended_by`."""
    rows = []
    for terminal in range(100, 100 + n):
        first = ended_by - length - terminal % 3
        rows.append((terminal, first - 1, 4, 0))
        rows += [(terminal, day, 2, 2) for day in range(first, first + length)]
        rows.append((terminal, first + length, 4, 0))
    return rows


def _ongoing(first: int) -> list[tuple[int, int, int, int]]:
    """Terminal 42: clean the day before `first`, fraud every day from then to the horizon."""
    return [(42, first - 1, 3, 0), *((42, day, 2, 2) for day in range(first, HORIZON + 1))]


def test_terminal_risk_stops_once_the_compromise_has_probably_ended():
    past = _compromises(6, 10, ended_by=HORIZON - 1)
    payment = [(3, 42, T0, "20.00", "USD")]
    # ten days of fraud by the horizon: the transaction is on day 18 of the run, past every
    # compromise seen (all ten days long)
    old = score_rows(payment, history=history_of(_days([*past, *_ongoing(HORIZON - 9)])))
    assert old.flagged == 0
    assert verdict(old, 1).rule_ids == ""
    # two days of fraud: day 10 of the run, compromises last ten days: still going
    young = score_rows(payment, history=history_of(_days([*past, *_ongoing(HORIZON - 1)])))
    assert verdict(young, 1).rule_ids == "terminal_risk"
    reason = verdict(young, 1).reasons
    assert (
        "compromises on this platform (2+ customers defrauded at the terminal) have lasted a "
        "median of 10 days (10-90 %: 10 days, 6 ended)" in reason
    )
    assert "still going on today with probability 100%" in reason
    # too few ended runs to learn from, or the look-back off: the rule as before
    for params in (
        FraudParameters(terminal_compromise_min_runs=7),
        FraudParameters(terminal_compromise_history_days=0),
    ):
        history = history_of(_days([*past, *_ongoing(HORIZON - 9)]))
        before = score_rows(payment, params=params, history=history)
        assert verdict(before, 1).rule_ids == "terminal_risk"
        assert "compromises on this platform" not in verdict(before, 1).reasons


def test_a_compromise_longer_than_the_terminal_window_is_read_to_its_start():
    """Runs are read over `terminal_history_days` (28); one with no clean day in them is read
    on over `terminal_compromise_history_days` (90), where the lengths are learnt. Read over
    28 days only, a 46-day run looked 28 days old and "still going" after compromises that
    all lasted 50 days: the rule kept firing after every long compromise ended (session 14,
    56-day compromises)."""
    past = _compromises(6, 50, ended_by=HORIZON - 1)
    history = history_of(_days([*past, *_ongoing(HORIZON - 45)]))
    payment = [(3, 42, T0, "20.00", "USD")]
    # 46 days of fraud by the horizon, 53 at the payment: past every compromise seen
    assert verdict(score_rows(payment, history=history), 1).rule_ids == ""
    # a run of 20 days by the horizon (inside the window) is younger than them: still on
    young = history_of(_days([*past, *_ongoing(HORIZON - 19)]))
    reason = verdict(score_rows(payment, history=young), 1).reasons
    assert "fraud on every labelled day of the last 20 days" in reason
    assert "a median of 50 days" in reason and "probability 100%" in reason


def test_the_estimate_uses_no_label_after_the_rows_horizon():
    # six compromises that end only after the horizon: not known, nothing learnt
    late = _compromises(6, 10, ended_by=HORIZON + 3)
    history = history_of(_days([*late, *_ongoing(HORIZON - 9)]))
    payment = [(3, 42, T0, "20.00", "USD")]
    assert verdict(score_rows(payment, history=history), 1).rule_ids == "terminal_risk"
    # the same history five days later knows they lasted ten days: the run, now 15 days
    # old at the horizon, has probably ended (and without the estimate the rule still fires)
    later = [(3, 42, T0 + timedelta(days=5), "20.00", "USD")]
    assert verdict(score_rows(later, history=history), 1).rule_ids == ""
    without = FraudParameters(terminal_compromise_min_runs=7)
    assert verdict(score_rows(later, params=without, history=history), 1).rule_ids == (
        "terminal_risk"
    )


def test_the_probability_is_a_numeric_feature_for_the_model():
    from ledgerguard.fraud.engine.features import build_features
    from ledgerguard.fraud.engine.frame import engine_frame
    from ledgerguard.fraud.engine.model import feature_columns
    from tests.unit.fraud.helpers import fx, rows_frame

    past = _compromises(6, 10, ended_by=HORIZON - 1)
    history = history_of(_days([*past, *_ongoing(HORIZON - 9)]))
    frame = engine_frame(rows_frame([(3, 42, T0, "20.00", "USD")]), fx())
    features = build_features(frame.drop(columns="external_id"), history, FraudParameters())
    assert ACTIVE_PROBABILITY in feature_columns(features)
    assert "terminal_compromise_lengths" not in feature_columns(features)
    # six runs ended after ten days; terminal 42's own, still open after ten, may last longer
    assert features[ACTIVE_PROBABILITY].tolist() == pytest.approx([1 / 7])


def test_a_reason_without_learnt_lengths_claims_none():
    """Words missing as NaN are no lengths: the reason must not say compromises "have lasted
    nan" (seen in a 56-day-compromise run). A frame whose words column mixes strings and None
    is given pandas 3's `str` dtype, which holds the None as NaN; one of None only stays
    object."""
    from ledgerguard.fraud.engine.features import build_features
    from ledgerguard.fraud.engine.frame import engine_frame
    from ledgerguard.fraud.engine.rules import RULES
    from ledgerguard.fraud.engine.terminal_features import COMPROMISE_WORDS
    from tests.unit.fraud.helpers import fx, rows_frame

    history = history_of(_days(_ongoing(HORIZON - 9)))  # no ended run to learn from
    frame = engine_frame(rows_frame([(3, 42, T0, "20.00", "USD")]), fx())
    features = build_features(frame.drop(columns="external_id"), history, FraudParameters())
    data = pd.concat([frame, features], axis=1)
    rule = next(rule for rule in RULES if rule.id == "terminal_risk")
    for missing in (None, np.nan):
        data[COMPROMISE_WORDS] = pd.Series([missing], dtype=object)
        [reason] = rule.explain(data, FraudParameters())
        assert "fraud on every labelled day of the last 10 days" in reason
        assert "have lasted" not in reason and "nan" not in reason


def test_a_run_counts_its_distinct_defrauded_customers():
    days = _days(
        [
            # terminal 1: a run on days 11-13, customers 5, 6, 5 (and 5 again on day 13)
            (1, 10, 3, 0),
            (1, 11, 1, 1),
            (1, 12, 1, 1),
            (1, 13, 2, 2),
            (1, 14, 4, 0),
            # fraud of customer 8 outside the run (a mostly clean day): not the run's
            (1, 15, 9, 1),
            # terminal 2: one customer's four fraud days (a stolen card at its owner's shop)
            (2, 9, 1, 0),
            *((2, day, 1, 1) for day in range(10, 14)),
            (2, 14, 1, 0),
        ]
    )
    frauds = pd.DataFrame(
        [(1, 5, 11), (1, 6, 12), (1, 5, 13), (1, 9, 13), (1, 8, 15)]
        + [(2, 3, day) for day in range(10, 14)],
        columns=["terminal_id", "user_id", "day"],
    )
    runs = _runs_of(days, min_share=0.5)
    assert runs.length.tolist() == [3, 4]
    customers = run_customers(
        runs, frauds["terminal_id"].to_numpy(), frauds["day"].to_numpy(), frauds["user_id"]
    )
    assert customers.tolist() == [3, 1]
    history = TerminalHistory(days, add_fraud_customers([frauds.assign(n_fraud=1)]))
    got = history.run_customers(
        np.array([1, 1, 2, 3]), first=np.array([11, 11, 0, 0]), stop=np.array([14, 16, 99, 99])
    )
    assert got.tolist() == [3, 4, 1, 0]


def _stolen_cards(n: int, length: int, *, ended_by: int) -> list[tuple[int, int, int, int]]:
    """`n` quiet shops (200, 201, ...) where one stolen card paid on `length` days in a row."""
    rows = []
    for terminal in range(200, 200 + n):
        first = ended_by - length - terminal % 4
        rows.append((terminal, first - 1, 1, 0))
        rows += [(terminal, day, 1, 1) for day in range(first, first + length)]
        rows.append((terminal, first + length, 1, 0))
    return rows


def test_one_customers_fraud_days_do_not_teach_how_long_compromises_last():
    """Round 7a at 2.0 terminals per customer: a stolen card's 2-5 fraud days at its owner's
    quiet shop are runs of share 1 that end within days; learnt as compromises, they called a
    young compromise over. Only runs with `terminal_compromise_min_customers` count."""
    past = _compromises(6, 20, ended_by=HORIZON - 1) + _stolen_cards(30, 3, ended_by=HORIZON - 1)
    rows = [*past, *_ongoing(HORIZON - 1)]  # two days of fraud: day 10 of the run
    stolen = tuple(range(200, 230))
    payment = [(3, 42, T0, "20.00", "USD")]
    fixed = score_rows(payment, history=history_of(_days(rows), one_customer=stolen))
    assert verdict(fixed, 1).rule_ids == "terminal_risk"
    assert "a median of 20 days (10-90 %: 20 days, 6 ended)" in verdict(fixed, 1).reasons
    # counting every run (round 7a): 36 ended runs, 30 of them three days long
    before = FraudParameters(terminal_compromise_min_customers=1)
    calmed = score_rows(
        payment, params=before, history=history_of(_days(rows), one_customer=stolen)
    )
    assert verdict(calmed, 1).rule_ids == ""
    # the same shops with a different customer every day are compromises: calmed as well
    many = score_rows(payment, history=history_of(_days(rows)))
    assert verdict(many, 1).rule_ids == ""


def test_customers_are_needed_only_when_counted():
    rows = [*_compromises(6, 10, ended_by=HORIZON - 1), *_ongoing(HORIZON - 9)]
    payment = [(3, 42, T0, "20.00", "USD")]
    with pytest.raises(FraudAnalysisError, match="fraud customers"):
        score_rows(payment, history=TerminalHistory(_days(rows)))
    one = FraudParameters(terminal_compromise_min_customers=1)
    without = score_rows(payment, params=one, history=TerminalHistory(_days(rows)))
    assert verdict(without, 1).rule_ids == ""


def test_terminal_risk_does_not_fire_at_a_stolen_cards_shop():
    """The current run of fraud is a compromise only with two defrauded customers: one
    customer's fraud on the latest labelled days at a quiet shop (a stolen card used at its
    owner's usual shop) no longer makes the shop's next customers suspect."""
    rows = [(42, HORIZON - 3, 1, 0), (42, HORIZON - 1, 1, 1), (42, HORIZON, 2, 2)]
    payment = [(3, 42, T0, "20.00", "USD")]
    card = score_rows(payment, history=history_of(_days(rows), one_customer=[42]))
    assert verdict(card, 1).rule_ids == ""
    shop = score_rows(payment, history=history_of(_days(rows)))  # three customers
    assert verdict(shop, 1).rule_ids == "terminal_risk"
    one = FraudParameters(terminal_compromise_min_customers=1)
    before = score_rows(payment, params=one, history=history_of(_days(rows), one_customer=[42]))
    assert verdict(before, 1).rule_ids == "terminal_risk"


def test_terminal_risk_rises_on_a_compromises_first_labelled_days():
    """A busy terminal clean for a week, then fraud on every payment of the two latest
    labelled days (three customers): the recent share, still diluted by the clean week, is
    below the rule's 0.5; the run's own share is whole, so the rule fires (round 9b)."""
    rows = [*((42, day, 4, 0) for day in range(HORIZON - 8, HORIZON - 1)), (42, HORIZON - 1, 4, 1)]
    rows.append((42, HORIZON, 4, 4))
    payment = [(3, 42, T0, "20.00", "USD")]
    scored = score_rows(payment, history=history_of(_days(rows)))
    row = verdict(scored, 1)
    assert row.rule_ids == "terminal_risk"
    assert "fraud on every labelled day of the last 2 days, 62% of its payments on them" in (
        row.reasons
    )
    weighted = int(row.reasons.split("% with the latest days weighted most")[0].split("; ")[-1])
    assert weighted < 50  # the recent share alone would not have fired
    # the run broken by a clean day between: the same two fraud days no longer make a run
    broken = [*rows[:-2], (42, HORIZON - 1, 4, 1), (42, HORIZON, 4, 0)]
    assert verdict(score_rows(payment, history=history_of(_days(broken))), 1).rule_ids == ""


def _with_early(days: pd.DataFrame, early: list[tuple[int, int]]) -> TerminalHistory:
    """The history of `days` (each fraud labelled `label_delay_days` after its day) plus frauds
    at terminal 42 of (customer, day) labelled the next day: an analyst's decisions."""
    delay = FraudParameters().label_delay_days
    late = fraud_customers_of(days)
    late[LABELLED_DAY] = late["day"] + delay
    soon = pd.DataFrame(
        {
            "terminal_id": 42,
            "user_id": [user for user, _ in early],
            "day": [day for _, day in early],
            "n_fraud": 1,
        }
    )
    soon[LABELLED_DAY] = soon["day"] + 1
    extra = soon.groupby(["terminal_id", "day"], as_index=False)["n_fraud"].sum()
    both = pd.concat([days, extra.assign(n_tx=extra["n_fraud"])], ignore_index=True)
    both = both.groupby(["terminal_id", "day"], as_index=False)[["n_tx", "n_fraud"]].sum()
    return TerminalHistory(both, pd.concat([late, soon], ignore_index=True))


def test_early_confirmations_fire_while_the_compromise_they_show_probably_goes_on():
    """Frauds confirmed before the label delay say the terminal *was* compromised on their
    days; once its compromise has lasted longer than every one seen, the labels of its last
    days still come in early, and a count of them alone flagged the terminal's next customers
    (session 20: most of the count rule's false alarms). The chance that it still goes on
    decides, from the same learnt lengths as the labelled run's."""
    params = FraudParameters(terminal_early_fraud_min_customers=2)
    past = _compromises(6, 10, ended_by=HORIZON - 1)  # compromises last 10 days here
    payment = [(3, 42, T0, "20.00", "USD")]
    confirmed = [(10, TODAY - 2), (11, TODAY - 1)]  # labelled the day after: known today
    # a fresh compromise (clean at the horizon), seen two days ago: day 3 of 10, flagged
    fresh = _with_early(_days([*past, (42, HORIZON, 3, 0)]), confirmed)
    row = verdict(score_rows(payment, history=fresh, params=params), 1)
    assert row.rule_ids == "terminal_risk" and row.flagged
    assert row.reasons.startswith("terminal_risk: 2 other customers' payments at terminal 42")
    assert "probability" not in row.reasons  # P = 1: nothing to qualify
    # the same confirmations at the end of a run that began 3 days before the horizon: it
    # went on to yesterday, its 10th day; today is its 11th, and every one seen lasted 10
    ended = _with_early(_days([*past, *_ongoing(HORIZON - 3)]), confirmed)
    assert score_rows(payment, history=ended, params=params).flagged == 0
    # the model reads the probability, 0 there and 1 at the fresh one
    from ledgerguard.fraud.engine.features import build_features
    from ledgerguard.fraud.engine.frame import engine_frame
    from ledgerguard.fraud.engine.terminal_features import EARLY_ACTIVE_PROBABILITY
    from tests.unit.fraud.helpers import fx, rows_frame

    frame = engine_frame(rows_frame(payment), fx()).drop(columns="external_id")
    probability = [
        float(build_features(frame, history, params)[EARLY_ACTIVE_PROBABILITY].iloc[0])
        for history in (fresh, ended)
    ]
    assert probability == [1.0, 0.0]
    # a run of 5 days by the horizon, early frauds on its 10th and 11th days: it lasted
    # longer than any seen, so nothing is learnt about it (1, as without the estimate)
    longer = _with_early(_days([*past, *_ongoing(HORIZON - 4)]), confirmed)
    assert score_rows(payment, history=longer, params=params).flagged == 1
