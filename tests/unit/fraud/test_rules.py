"""Each rule at its boundaries, on hand-made transactions (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledgerguard.fraud.engine.rules import NEAR_MISS, RULE_IDS, RULES
from ledgerguard.fraud.engine.terminal_history import LABELLED_DAY, TerminalHistory
from ledgerguard.settings.fraud import FraudParameters
from tests.unit.fraud.helpers import T0, fx, history_of, rows_frame, score_rows, verdict


def _large(amount: str, currency: str = "USD") -> bool:
    scores = score_rows([(1, 1, T0, amount, currency)])
    row = verdict(scores, 1)
    assert ("large_amount" in row.rule_ids) == bool(row.flagged)
    return bool(row.flagged)


def test_large_amount_boundary_is_strict_and_exact():
    assert not _large("10000.00")
    assert _large("10000.01")
    assert not _large("9999.99")


@settings(max_examples=60, deadline=None)
@given(cents=st.integers(min_value=999_000, max_value=1_001_000))
def test_large_amount_flags_iff_above_10000_usd(cents: int):
    amount = f"{cents // 100}.{cents % 100:02d}"
    assert _large(amount) == (Decimal(amount) > Decimal("10000.00"))


def test_9000_eur_above_10000_usd_is_flagged():
    moment = datetime(2021, 1, 6, 12, tzinfo=UTC)  # EUR 1.23 USD at the ECB
    assert fx().to_usd(Decimal("9000.00"), "EUR", moment.date()) > Decimal("10000")
    scores = score_rows([(1, 1, moment, "9000.00", "EUR")])
    row = verdict(scores, 1)
    assert row.flagged and row.rule_ids == "large_amount"
    # as paid, then its USD value: what the analyst checks against the 10,000 USD line
    usd = fx().to_usd(Decimal("9000.00"), "EUR", moment.date())
    assert row.reasons == (
        f"large_amount: 9,000.00 EUR ({usd:,.2f} USD at the ECB rate of its day) is above "
        "10,000.00 USD"
    )


def test_large_amount_reasons_use_the_currencys_decimals():
    """Yen have no minor unit: the reason says 2,000,000 JPY, not 2,000,000.00 JPY; a USD
    payment is named once."""
    moment = datetime(2021, 1, 6, 12, tzinfo=UTC)
    scores = score_rows([(1, 1, moment, "2000000", "JPY"), (2, 2, moment, "15000.00", "USD")])
    assert verdict(scores, 1).reasons.startswith("large_amount: 2,000,000 JPY (")
    assert verdict(scores, 2).reasons == "large_amount: 15,000.00 USD is above 10,000.00 USD"


def test_currency_without_ecb_rate_is_reported_not_crashing():
    scores = score_rows([(1, 1, T0, "50000000", "XOF"), (2, 1, T0, "20000.00", "USD")])
    unknown = verdict(scores, 1)
    assert not unknown.flagged and unknown.usd_units == -1
    assert "no ECB USD rate for XOF" in unknown.reasons
    assert scores.no_usd_rate == 1 and scores.flagged == 1


def test_structuring_fires_on_near_threshold_series_only():
    series = [(5, 1, T0 + timedelta(hours=h), "9500.00", "USD") for h in (0, 5, 20)]
    scores = score_rows(series)
    assert all(verdict(scores, i).rule_ids == "structuring" for i in (1, 2, 3))
    assert "3 transactions" in verdict(scores, 1).reasons
    # A single near-threshold payment, or small ones adding up, is not structuring.
    assert scores.counts_by_rule["structuring"] == 3
    assert score_rows([(5, 1, T0, "9500.00", "USD")]).counts_by_rule["structuring"] == 0
    small = [(5, 1, T0 + timedelta(hours=h), "4000.00", "USD") for h in (0, 1, 2)]
    assert score_rows(small).counts_by_rule["structuring"] == 0
    # Outside the window (default 72 h) the payments are separate events.
    apart = [(5, 1, T0 + timedelta(days=d), "9500.00", "USD") for d in (0, 4)]
    assert score_rows(apart).counts_by_rule["structuring"] == 0


def test_velocity_marks_the_whole_burst():
    burst = [(7, 100 + i, T0 + timedelta(minutes=i), "1.50", "USD") for i in range(8)]
    scores = score_rows(burst)
    assert scores.counts_by_rule["velocity"] == 8  # the first charges too, not only the 5th+
    assert "8 charges" in verdict(scores, 1).reasons and "8 terminals" in verdict(scores, 1).reasons
    few = [(7, 100 + i, T0 + timedelta(minutes=i), "1.50", "USD") for i in range(4)]
    assert score_rows(few).counts_by_rule["velocity"] == 0
    spread = [(7, 100, T0 + timedelta(hours=i), "1.50", "USD") for i in range(8)]
    assert score_rows(spread).counts_by_rule["velocity"] == 0


def _history(user: int, days: int = 20, amount: str = "50.00") -> list:
    return [(user, 1, T0 - timedelta(days=days - d), amount, "USD") for d in range(days)]


def test_spending_anomaly_against_own_history():
    rows = [
        *_history(9),
        (9, 1, T0, "400.00", "USD"),
        (9, 1, T0 + timedelta(hours=1), "60.00", "USD"),
    ]
    scores = score_rows(rows, start=T0)
    anomaly, normal = verdict(scores, 21), verdict(scores, 22)
    assert anomaly.rule_ids == "spending_anomaly" and anomaly.flagged
    assert "8.0x" in anomaly.reasons
    assert normal.rule_ids == "" and not normal.flagged
    # Without enough history there is no baseline.
    short = [*_history(9, days=3), (9, 1, T0, "400.00", "USD")]
    assert score_rows(short, start=T0).counts_by_rule["spending_anomaly"] == 0


def test_spending_anomaly_lowers_its_bar_after_repeated_anomalies():
    """A compromised card is misused several times: after two payments at >= 3x the median
    in the last 7 days, 2.6x flags too (and says why); without them it does not."""
    repeats = [
        (9, 1, T0 - timedelta(days=3), "200.00", "USD"),
        (9, 1, T0 - timedelta(days=1), "250.00", "USD"),
    ]
    after = score_rows([*_history(9), *repeats, (9, 1, T0, "130.00", "USD")], start=T0)
    row = verdict(after, 23)
    assert row.flagged and row.rule_ids == "spending_anomaly"
    assert "2.6x the user's 30-day median of 50.00 USD" in row.reasons
    assert "after 2 payments of the last 7 days at 3x or more" in row.reasons
    alone = score_rows([*_history(9), repeats[0], (9, 1, T0, "130.00", "USD")], start=T0)
    assert not verdict(alone, 22).flagged
    # a payment at >= 3x on its own says nothing about repeats
    plain = score_rows([*_history(9), *repeats, (9, 1, T0, "400.00", "USD")], start=T0)
    assert "after" not in verdict(plain, 23).reasons
    # the repeat bar is a setting (never above anomaly_ratio)
    strict = FraudParameters(anomaly_repeat_min=3)
    rows = [*_history(9), *repeats, (9, 1, T0, "130.00", "USD")]
    assert not verdict(score_rows(rows, start=T0, params=strict), 23).flagged


def test_spending_baseline_ignores_card_testing_bursts():
    burst = [(9, 50 + i, T0 - timedelta(days=2, minutes=-i), "1.00", "USD") for i in range(15)]
    rows = [*_history(9), *burst, (9, 1, T0, "55.00", "USD")]
    scores = score_rows(rows, start=T0)
    assert scores.counts_by_rule["spending_anomaly"] == 0


def _terminal_history(terminal: int, day: int, n_tx: int, n_fraud: int) -> TerminalHistory:
    return history_of(
        pd.DataFrame(
            {"terminal_id": [terminal], "day": [day], "n_tx": [n_tx], "n_fraud": [n_fraud]}
        )
    )


def test_terminal_risk_counts_only_labels_up_to_the_label_horizon():
    """The nightly run of day d knows every label of day d - delay (its horizon), not one of
    the day after; the streaming scorer's horizon (`at_payment_time`) is a day older."""
    today = (T0 - T0.replace(year=1970, month=1, day=1)).days
    params = FraudParameters()
    horizon = today - params.label_delay_days
    payment = [(3, 42, T0, "20.00", "USD")]
    known = _terminal_history(42, horizon, 6, 5)
    scores = score_rows(payment, history=known)
    assert verdict(scores, 1).rule_ids == "terminal_risk"
    assert (
        "5 of terminal 42's 6 payments in the 7 days up to 7 days before this one confirmed as "
        "fraud (labels known by then" in verdict(scores, 1).reasons
    )
    assert score_rows(payment, history=known, params=params.at_payment_time()).flagged == 0
    older = _terminal_history(42, horizon - 1, 6, 5)
    assert score_rows(payment, history=older, params=params.at_payment_time()).flagged == 1
    too_recent = _terminal_history(42, horizon + 1, 6, 5)
    assert score_rows(payment, history=too_recent).flagged == 0
    one_fraud = _terminal_history(42, horizon, 1, 1)
    assert score_rows(payment, history=one_fraud).flagged == 0


def _fraud_table(terminal: int, frauds: list[tuple[int, int, int]]) -> pd.DataFrame:
    """The fraud-customer table of `frauds` at `terminal`: (customer, payment day, labelled
    day)."""
    return pd.DataFrame(
        {
            "terminal_id": terminal,
            "user_id": [user for user, _, _ in frauds],
            "day": [paid for _, paid, _ in frauds],
            "n_fraud": 1,
            LABELLED_DAY: [labelled for _, _, labelled in frauds],
        }
    )


def _confirmed(terminal: int, frauds: list[tuple[int, int, int]]) -> TerminalHistory:
    """A terminal history holding only `frauds`: (customer, payment day, labelled day)."""
    table = _fraud_table(terminal, frauds)
    days = table.groupby(["terminal_id", "day"], as_index=False)["n_fraud"].sum()
    return TerminalHistory(days.assign(n_tx=days["n_fraud"]), table)


def test_fraud_confirmed_before_the_label_delay_fires_terminal_risk_at_once():
    """Two other customers' payments at the terminal of the last days confirmed as fraud
    already (an analyst's decision, not a chargeback a week later): today's payment there is
    flagged, saying why, by the nightly run and the stream alike. Not with one such customer
    (twice), not when a label comes after today, not for a defrauded customer's own payment,
    not for payments older than the early days, not without the labels' days, not with the
    setting at 0, not for a customer whose card was misused at another terminal too (a
    stolen card, not the terminal); the setting is 2 by default."""
    today = (T0 - T0.replace(year=1970, month=1, day=1)).days
    params = FraudParameters(terminal_early_fraud_min_customers=2)
    payment = [(3, 42, T0, "20.00", "USD")]
    two = [(10, today - 2, today - 1), (11, today - 1, today)]
    scores = score_rows(payment, history=_confirmed(42, two), params=params)
    row = verdict(scores, 1)
    assert row.rule_ids == "terminal_risk" and row.flagged
    assert row.reasons == (
        "terminal_risk: 2 other customers' payments at terminal 42 in the last 7 days already "
        "confirmed as fraud (before the usual 7-day label delay: analyst decisions or early "
        "chargebacks)"
    )
    stream = params.at_payment_time()
    assert score_rows(payment, history=_confirmed(42, two), params=stream).flagged == 1
    not_yet = [(10, today - 2, today - 1), (11, today - 1, today + 1)]
    once = [(10, today - 2, today - 1), (10, today - 1, today)]
    older = [(10, today - 7, today - 1), (11, today - 1, today)]
    for frauds in ([two[0]], not_yet, once, older):
        assert score_rows(payment, history=_confirmed(42, frauds), params=params).flagged == 0
    own = [(10, 42, T0, "20.00", "USD")]
    assert score_rows(own, history=_confirmed(42, two), params=params).flagged == 0
    # the same frauds without the day their labels came: none counts as early
    days = pd.DataFrame({"terminal_id": [42], "day": [today - 1], "n_tx": [2], "n_fraud": [2]})
    frauds = pd.DataFrame({"terminal_id": 42, "user_id": [10, 11], "day": today - 1, "n_fraud": 1})
    assert score_rows(payment, history=TerminalHistory(days, frauds), params=params).flagged == 0
    assert score_rows(payment, history=_confirmed(42, two)).flagged == 1  # the default: 2
    off = FraudParameters(terminal_early_fraud_min_customers=0)
    assert score_rows(payment, history=_confirmed(42, two), params=off).flagged == 0
    # customer 11's card was misused at terminal 43 too in those days: a stolen card, which
    # says nothing about terminal 42 (one customer left there); confirmed only after today,
    # the other misuse does not count yet
    for at_43, flagged in ((today - 1, 0), (today + 1, 1)):
        elsewhere = pd.DataFrame(
            {"terminal_id": 43, "user_id": [11], "day": [today - 2], "n_fraud": 1}
        ).assign(**{LABELLED_DAY: at_43})
        table = pd.concat([_fraud_table(42, two), elsewhere], ignore_index=True)
        days = table.groupby(["terminal_id", "day"], as_index=False)["n_fraud"].sum()
        both = TerminalHistory(days.assign(n_tx=days["n_fraud"]), table)
        assert score_rows(payment, history=both, params=params).flagged == flagged


@pytest.mark.parametrize(
    ("after", "flagged"), [(timedelta(hours=2), True), (timedelta(days=7), False)]
)
def test_labels_in_memory_are_early_by_their_labelled_at(after: timedelta, flagged: bool):
    """`score_in_memory` (`fraud evaluate`, the detection bench) reads when each label came
    from its `labelled_at` text: two customers' frauds at the terminal yesterday, labelled two
    hours later, make today's payment there a flag (`terminal_early_fraud_min_customers` 2);
    labelled the full delay late, they do not (the generator's labels: its figures are as
    before)."""
    from ledgerguard.fraud.evaluate import score_in_memory

    yesterday = T0 - timedelta(days=1)
    rows = [(10, 42, yesterday, "20.00", "USD"), (11, 42, yesterday, "25.00", "USD")]
    rows += [(3, 42, T0, "20.00", "USD")]
    transactions = rows_frame(rows)
    labels = pd.DataFrame(
        {
            "external_id": ["t0", "t1"],
            "is_fraud": [1, 1],
            "labelled_at": [(yesterday + after).isoformat()] * 2,
        }
    )
    scored = score_in_memory(
        transactions,
        labels,
        start=T0,
        end=T0 + timedelta(seconds=1),
        params=FraudParameters(terminal_early_fraud_min_customers=2),
    )
    assert scored["flagged"].tolist() == [flagged]
    assert ("terminal_risk" in scored["rule_ids"].iloc[0]) == flagged


def test_the_day_a_label_came_is_read_from_its_labelled_at():
    """ISO 8601 text (any offset) or datetimes give the UTC day; an empty or missing
    `labelled_at` never counts as early (a day later than any payment's)."""
    from ledgerguard.fraud.engine.terminal_history import labelled_days_of

    day = (datetime(2025, 3, 3, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)).days
    text = pd.Series(["2025-03-03T23:30:00+00:00", "2025-03-04T00:30:00+02:00", "", None])
    days = labelled_days_of(text)
    assert days[:2].tolist() == [day, day] and (days[2:] > day + 10**9).all()
    moments = pd.Series(pd.to_datetime(["2025-03-03 12:00", None], utc=True))
    assert labelled_days_of(moments)[0] == day and labelled_days_of(moments)[1] > day + 10**9


def test_near_misses_never_flag_alone():
    params = FraudParameters()
    for rule in RULES:
        if not rule.hard:
            assert params.rule_weight(rule.id) * NEAR_MISS < params.score_threshold


def test_a_fired_terminal_risk_ranks_its_flags_by_their_risk():
    """Fired at risk 0.55 and 1.0 (P(fraud) of each), both flag alone, the surer one scores
    higher; the floor follows the weight so a fired rule still reaches `score_threshold`, and a
    weight below it leaves the rule as it was (strength 1, never flagging alone)."""
    from ledgerguard.fraud.engine.rules import fired_floor
    from ledgerguard.fraud.engine.scoring import noisy_or
    from ledgerguard.fraud.engine.terminal_features import (
        ACTIVE_PROBABILITY,
        COMPROMISE_WORDS,
        EARLY_ACTIVE_PROBABILITY,
        EARLY_FRAUD_CUSTOMERS,
    )

    risk = np.array([0.55, 1.0, 0.4])
    data = pd.DataFrame(
        {
            EARLY_FRAUD_CUSTOMERS: 0,
            EARLY_ACTIVE_PROBABILITY: 0.0,
            "terminal_nb_fraud_7d": 5,
            "terminal_nb_tx_7d": 5,
            "terminal_fraud_run_days": 20,
            ACTIVE_PROBABILITY: risk,
            COMPROMISE_WORDS: None,
            "terminal_recent_risk": 1.0,
            "terminal_run_fraud_share": 1.0,
        },
        index=range(3),
    )
    rule = next(rule for rule in RULES if rule.id == "terminal_risk")

    def scores(params: FraudParameters) -> np.ndarray:
        outcome = rule.evaluate(data, params)
        assert outcome.fired.tolist() == [True, True, False]
        return noisy_or((params.weight_terminal_risk * outcome.strength)[:, None])

    for weight in (0.7, 0.55, 1.0):
        params = FraudParameters(weight_terminal_risk=weight)
        low, high, miss = scores(params)
        assert params.score_threshold <= low < high == weight and miss < params.score_threshold
        assert fired_floor(params, "terminal_risk") == pytest.approx(0.5 / weight)
    off = scores(FraudParameters(terminal_risk_strength_by_risk=False))
    assert off[0] == off[1] == 0.7  # as before session 15
    weak = FraudParameters(weight_terminal_risk=0.4)
    assert fired_floor(weak, "terminal_risk") == 1.0
    assert scores(weak)[:2].tolist() == [0.4, 0.4]


def test_rules_have_ids_descriptions_and_weights():
    assert RULE_IDS == (
        "large_amount",
        "structuring",
        "velocity",
        "spending_anomaly",
        "terminal_risk",
    )
    assert all(rule.description for rule in RULES)
    assert [rule.id for rule in RULES if rule.hard] == ["large_amount"]


def test_lookback_rows_are_not_scored():
    rows = [(1, 1, T0 - timedelta(days=1), "20000.00", "USD"), (1, 1, T0, "20.00", "USD")]
    scores = score_rows(rows, start=T0)
    assert scores.analysed == 1 and scores.flagged == 0
    assert np.array_equal(scores.rows["transaction_id"].to_numpy(), [2])


def test_parameters_change_the_rules():
    rows = [(1, 1, T0, "600.00", "USD")]
    assert score_rows(rows).flagged == 0
    assert score_rows(rows, params=FraudParameters(large_amount_usd=Decimal("500"))).flagged == 1


def test_report_cells_that_a_spreadsheet_would_run_are_neutralised(tmp_path):
    import csv
    from decimal import Decimal

    from ledgerguard.fraud.reports.fraud_report import write_csv_atomic

    path = write_csv_atomic(
        tmp_path / "r.csv",
        ["external_id", "amount", "note"],
        [['=HYPERLINK("http://x")', Decimal("-5.00"), "@SUM(A1)"], ["+1", 3, "-2+3"]],
    )
    rows = list(csv.reader(path.open()))
    assert rows[1] == ['\'=HYPERLINK("http://x")', "-5.00", "'@SUM(A1)"]
    assert rows[2] == ["'+1", "3", "'-2+3"]


def test_the_early_trigger_fires_at_the_chance_the_compromise_goes_on_and_says_it():
    """Early confirmations fire `terminal_risk` at P(the compromise they show still goes on):
    from the bar (0.5) on, with that probability in the reason when it is below 1."""
    from ledgerguard.fraud.engine.terminal_features import (
        ACTIVE_PROBABILITY,
        COMPROMISE_WORDS,
        EARLY_ACTIVE_PROBABILITY,
        EARLY_FRAUD_CUSTOMERS,
    )

    data = pd.DataFrame(
        {
            "terminal_id": 42,
            EARLY_FRAUD_CUSTOMERS: [2, 2, 2, 1],
            EARLY_ACTIVE_PROBABILITY: [1.0, 0.7, 0.4, 1.0],
            "terminal_nb_fraud_7d": 0,
            "terminal_nb_tx_7d": 0,
            "terminal_fraud_run_days": 0,
            ACTIVE_PROBABILITY: 0.0,
            COMPROMISE_WORDS: None,
            "terminal_recent_risk": 0.0,
            "terminal_run_fraud_share": 0.0,
            "terminal_days_since_fraud": 28,
        }
    )
    rule = next(rule for rule in RULES if rule.id == "terminal_risk")
    params = FraudParameters()
    assert rule.evaluate(data, params).fired.tolist() == [True, True, False, False]
    reasons = rule.explain(data, params)
    assert reasons[0].startswith("terminal_risk: 2 other customers' payments at terminal 42")
    assert "probability" not in reasons[0]
    assert reasons[1].endswith("a compromise still going on today with probability 70%")
