"""The engine on a labelled synthetic data set: each rule finds its pattern, not normal traffic."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from functools import cache

import pandas as pd
import pytest

from ledgerguard.fraud.evaluate import evaluate, score_in_memory
from ledgerguard.fraud.synthetic import SyntheticConfig, generate

START, END = datetime(2025, 2, 1, tzinfo=UTC), datetime(2025, 3, 16, tzinfo=UTC)
EXPECTED_RULE = {
    "large_amount": "large_amount",
    "structuring": "structuring",
    "card_testing": "velocity",
    "spending_anomaly": "spending_anomaly",
    "terminal_compromise": "terminal_risk",
}


@cache
def scored() -> pd.DataFrame:
    config = SyntheticConfig(customers=1_200, terminals=600, days=75, seed=123)
    data = generate(config)
    return score_in_memory(data.transactions, data.labels, start=START, end=END)


def test_each_rule_fires_on_its_pattern():
    result = scored()
    for pattern, rule in EXPECTED_RULE.items():
        rows = result[result["pattern"] == pattern]
        assert len(rows), pattern
        share = rows["rule_ids"].str.contains(rule).mean()
        minimum = 0.5 if pattern == "terminal_compromise" else 0.8  # labels arrive a week late
        assert share >= minimum, (pattern, share)


def test_rules_stay_quiet_on_normal_traffic():
    result = scored()
    legit = result[result["is_fraud"] == 0]
    assert legit["rule_ids"].str.contains("large_amount").sum() == 0
    # A genuine small payment made in the middle of a card-testing burst is part of the burst.
    for rule in ("structuring", "velocity", "spending_anomaly"):
        assert legit["rule_ids"].str.contains(rule).mean() < 0.001, rule
    # terminal_risk keeps firing for about a label delay after a compromise ends.
    assert legit["flagged"].mean() < 0.01


def test_evaluation_table_has_every_pattern_and_overall():
    table = evaluate(scored())
    assert table["pattern"].tolist() == [*sorted(EXPECTED_RULE), "overall"]
    overall = table.set_index("pattern").loc["overall"]
    assert overall["average_precision"] > 0.5 and overall["precision"] > 0.6
    assert set(table.columns) == {
        "pattern",
        "positives",
        "detected",
        "precision",
        "recall",
        "average_precision",
    }


def test_synthetic_data_is_deterministic():
    config = SyntheticConfig(customers=50, terminals=30, days=10, seed=9)
    first, second = generate(config), generate(config)
    pd.testing.assert_frame_equal(first.transactions, second.transactions)
    pd.testing.assert_frame_equal(first.labels, second.labels)
    assert not generate(
        SyntheticConfig(customers=50, terminals=30, days=10, seed=10)
    ).transactions.equals(first.transactions)


def test_the_card_misuse_factor_range_sets_what_a_misused_payment_costs():
    base = SyntheticConfig(
        customers=300, terminals=150, days=30, seed=4, compromised_customer_rate=0.003
    )
    untouched = generate(replace(base, card_misuse_factor_min=1.0, card_misuse_factor_max=1.0))
    handbook = generate(replace(base, card_misuse_factor_min=5.0, card_misuse_factor_max=5.0))
    labels = handbook.labels.set_index("external_id")
    tx = handbook.transactions.set_index("external_id")
    before = untouched.transactions.set_index("external_id")
    assert before.index.equals(tx.index)  # the same payments, only the misused ones dearer
    misused = labels.index[labels["pattern"] == "spending_anomaly"]
    usd = misused[tx.loc[misused, "currency"] == "USD"]
    assert len(usd) > 20
    ratio = tx.loc[usd, "amount"].astype(float) / before.loc[usd, "amount"].astype(float)
    assert ratio.between(4.99, 5.01).all()
    others = tx.index.difference(misused)
    assert tx.loc[others, "amount"].equals(before.loc[others, "amount"])
    with pytest.raises(ValueError, match="1 <= min <= max"):
        replace(base, card_misuse_factor_min=6.0, card_misuse_factor_max=5.0)


def test_cards_skimmed_at_a_compromised_terminal_are_misused_elsewhere_afterwards():
    base = SyntheticConfig(
        customers=400, terminals=60, days=40, seed=21, compromised_terminal_rate=0.0005
    )
    handbook = generate(replace(base, skimmed_card_share=0.0))
    skimmed = generate(replace(base, skimmed_card_share=0.5, skim_delay_days=3))

    def card_events(data):
        events = data.events
        return events[events["pattern"] == "spending_anomaly"]

    # the same scenario draws, plus one card compromise per misused skimmed card
    extra = len(card_events(skimmed)) - len(card_events(handbook))
    assert extra > 5
    tx = skimmed.transactions.assign(pattern=skimmed.labels["pattern"])
    at_terminals = tx[tx["pattern"] == "terminal_compromise"]
    first_skim = at_terminals.groupby("user_id")["occurred_at"].min().dt.floor("D")
    cards = card_events(skimmed)
    joined = cards.merge(first_skim.rename("skim").reset_index(), on="user_id")
    delays = (joined["start"] - joined["skim"]).dt.days
    # every misuse of a skimmed customer starts 1-3 days after the skim (or is an unrelated
    # card compromise of the base scenario, which may start any day)
    assert ((delays >= 1) & (delays <= 3)).sum() >= extra
    assert (tx["pattern"] == "spending_anomaly").sum() > (
        handbook.labels["pattern"] == "spending_anomaly"
    ).sum()


def test_generate_takes_the_card_misuse_factor_range_and_refuses_it_reversed(tmp_path):
    from typer.testing import CliRunner

    from ledgerguard.cli.main import app

    runner = CliRunner()
    args = ["generate", "--rows", "2000", "--days", "10", "--out", str(tmp_path)]
    reversed_ = runner.invoke(app, [*args, "--card-misuse-factor", "6", "5"])
    assert reversed_.exit_code == 2 and "MIN 6.0 is above MAX 5.0" in reversed_.output
    assert not list(tmp_path.iterdir())  # nothing written
    done = runner.invoke(app, [*args, "--card-misuse-factor", "5", "5"])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "synthetic_transactions.csv").exists()


def test_terminal_compromises_may_last_lengths_drawn_from_a_range(tmp_path):
    from typer.testing import CliRunner

    from ledgerguard.cli.main import app

    base = SyntheticConfig(
        customers=400, terminals=60, days=60, seed=5, compromised_terminal_rate=0.002
    )
    fixed = generate(base)
    ranged = generate(replace(base, terminal_compromise_days=7, terminal_compromise_days_max=40))

    def compromises(data):
        events = data.events[data.events["pattern"] == "terminal_compromise"]
        return (events["end"] - events["start"]).dt.days

    assert set(compromises(fixed)) == {28}
    lengths = compromises(ranged)
    assert len(lengths) >= 8 and lengths.between(7, 40).all() and lengths.nunique() >= 4
    # every labelled payment of a compromise lies inside its terminal's drawn window (whose
    # days count from the first payment's time of day: `synthetic_patterns._rows_in_windows`)
    events = ranged.events[ranged.events["pattern"] == "terminal_compromise"]
    tx = ranged.transactions.assign(pattern=ranged.labels["pattern"])
    first = tx["occurred_at"].min()
    shift = first - first.floor("D")
    hits = tx[tx["pattern"] == "terminal_compromise"].merge(events, on="terminal_id")
    inside = (hits["occurred_at"] >= hits["start"] + shift) & (
        hits["occurred_at"] < hits["end"] + shift
    )
    assert inside.groupby(hits["external_id"]).any().all()
    with pytest.raises(ValueError, match="terminal_compromise_days_max"):
        replace(base, terminal_compromise_days=28, terminal_compromise_days_max=14)
    runner = CliRunner()
    args = ["generate", "--rows", "2000", "--days", "10", "--out", str(tmp_path)]
    refused = runner.invoke(app, [*args, "--terminal-compromise-days-max", "14"])
    words = " ".join(refused.output.replace("│", " ").split())  # the message box unwrapped
    assert refused.exit_code == 2 and "14 is below --terminal-compromise-days 28" in words
    assert not list(tmp_path.iterdir())  # nothing written
    done = runner.invoke(app, [*args, "--terminal-compromise-days-max", "42"])
    assert done.exit_code == 0, done.output


def test_a_share_of_the_frauds_may_be_labelled_early(tmp_path):
    """`early_label_share`: that share of the frauds is labelled at a moment of the delay, every
    other label the full delay late, and nothing else changes (the payments, the labels' values,
    the events: the draws come last)."""
    from typer.testing import CliRunner

    from ledgerguard.cli.main import app

    base = SyntheticConfig(customers=400, terminals=60, days=40, seed=6)
    late, early = generate(base), generate(replace(base, early_label_share=0.5))
    pd.testing.assert_frame_equal(late.transactions, early.transactions)
    pd.testing.assert_frame_equal(late.events, early.events)
    pd.testing.assert_frame_equal(
        late.labels.drop(columns="labelled_at"), early.labels.drop(columns="labelled_at")
    )
    delay = early.labels["labelled_at"] - early.transactions["occurred_at"]
    fraud = early.labels["is_fraud"] == 1
    assert (delay[~fraud] == pd.Timedelta(days=7)).all()
    sooner = delay[fraud] < pd.Timedelta(days=7)
    assert 0.4 < sooner.mean() < 0.6 and (delay[fraud] >= pd.Timedelta(0)).all()
    with pytest.raises(ValueError, match="early_label_share"):
        replace(base, early_label_share=1.5)
    runner = CliRunner()
    args = ["generate", "--rows", "2000", "--days", "10", "--out", str(tmp_path)]
    refused = runner.invoke(app, [*args, "--early-label-share", "1.5"])
    assert refused.exit_code == 2 and not list(tmp_path.iterdir())
    done = runner.invoke(app, [*args, "--early-label-share", "0.5"])
    assert done.exit_code == 0, done.output
