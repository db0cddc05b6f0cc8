"""`ledgerguard bench detection` (in memory, no cluster) and its script wrapper agree.

Small data sets: the test checks the report's shape and that the CLI's figures are those of the
library for the same seed, never the figures themselves (those belong in benchmarks/README.md).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from ledgerguard.cli.main import app as cli
from ledgerguard.load.bench.detection import (
    DetectionOptions,
    prepare_seed,
    run_detection,
    threshold_study,
)

runner = CliRunner()
SMALL = ["--rows", "6000", "--days", "30", "--scored-days", "10"]
#: fields that move from run to run (time, load, the temporary model store)
VOLATILE = {"seconds", "load_average_at_start", "load_average_at_end", "model_path"}


def _figures(report: dict) -> list[dict]:
    def fixed(values: dict) -> dict:
        return {
            k: fixed(v) if isinstance(v, dict) else v
            for k, v in values.items()
            if k not in VOLATILE
        }

    return [fixed(run) for run in report["runs"]]


def test_bench_detection_reports_each_seed_and_density_as_the_library_does() -> None:
    args = ["bench", "detection", "--seeds", "5,6", "--terminals-per-customer", "2.0", *SMALL]
    args += ["--set", "skimmed_card_share=0", "--param", "model_score=noisy_or"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [(r["seed"], r["terminals_per_customer"]) for r in report["runs"]] == [
        (5, 2.0),
        (6, 2.0),
    ]
    first = report["runs"][0]
    assert first["generator_overrides"] == {"skimmed_card_share": 0}
    assert first["engine_overrides"] == {"model_score": "noisy_or"}
    assert first["rules"][-1]["pattern"] == "overall" and "per_rule" in first
    assert set(first["by_block"]) == {"rules", "rules+model"}
    # the same seed gives the same figures as the library (and so the script wrapper)
    again = run_detection(
        DetectionOptions(
            seeds=(5,),
            rows=6000,
            days=30,
            scored_days=10,
            terminals_per_customer=(2.0,),
            overrides={"skimmed_card_share": 0},
            engine={"model_score": "noisy_or"},
        ),
        progress=lambda line: None,
    )
    # as JSON text: a pattern the run never flags has precision NaN, and NaN != NaN
    assert json.dumps(_figures(again), sort_keys=True) == json.dumps(
        _figures(report)[:1], sort_keys=True
    )


def test_a_prepared_seed_scores_with_other_parameters_for_the_studies() -> None:
    """`benchmarks/storage_bar.py` scores a prepared seed with every row kept: the rows the
    default bar stores keep their scores, and the rest (score 0 by default, as unstored rows
    count) get theirs, below the bar and unflagged."""
    with prepare_seed(5, rows=6000, days=30, scored_days=10, density=2.0) as prepared:
        assert prepared.model.version == prepared.training.version
        by_default = prepared.score(prepared.model).set_index("external_id")
        every_row = prepared.params.model_copy(update={"store_min_score": 0.0})
        scored = prepared.score(prepared.model, every_row).set_index("external_id")
    assert list(scored.index) == list(by_default.index)
    stored = by_default["user_id"].notna().to_numpy()  # a row the default run would store
    assert 0 < stored.sum() < len(stored)
    same = scored["score"].to_numpy()[stored] == by_default["score"].to_numpy()[stored]
    assert same.all()
    others = scored[~stored]
    assert (by_default["score"][~stored] == 0).all() and (others["score"] > 0).any()
    assert (others["score"] < prepared.params.store_min_score).all()
    assert not others["flagged"].any()


def test_an_engine_parameter_overrides_the_label_delay_taken_from_the_data() -> None:
    args = ["bench", "detection", "--seeds", "5", "--terminals-per-customer", "2.0", *SMALL]
    result = runner.invoke(cli, [*args, "--param", "label_delay_days=8"])
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)["runs"][0]
    assert run["engine_overrides"] == {"label_delay_days": "8"}  # as given, validated by the engine
    # the streaming scorer's horizon (a day older) changes what the engine sees; the data's
    # delay stays 7, and with it the label-blind share
    default = json.loads(runner.invoke(cli, args).stdout)["runs"][0]
    assert run["label_blind"] == default["label_blind"]
    seen, seen_by_default = (
        json.dumps(_figures({"runs": [{**r, "engine_overrides": None}]}), sort_keys=True)
        for r in (run, default)
    )
    assert seen != seen_by_default


def test_a_compromise_is_label_blind_until_its_first_day_reaches_the_horizon() -> None:
    """`label_blind_share`: a fraud on day k of a compromise (k = 0 on its first day) is blind
    to the nightly run while k < delay, to the streaming scorer while k <= delay, unless a
    label of the compromise came earlier."""
    from types import SimpleNamespace

    from ledgerguard.load.bench.detection_errors import label_blind_share

    start = pd.Timestamp("2026-03-01", tz="UTC")
    at = [start + pd.Timedelta(days=k, hours=12) for k in range(10)]  # days 0..9 of it
    data = SimpleNamespace(
        transactions=pd.DataFrame(
            {"external_id": [f"t{k}" for k in range(10)], "terminal_id": 5, "occurred_at": at}
        ),
        labels=pd.DataFrame({"pattern": "terminal_compromise", "is_fraud": [1] * 10}),
        events=pd.DataFrame(
            {
                "pattern": ["terminal_compromise"],
                "terminal_id": [5],
                "start": [start],
                "end": [start + pd.Timedelta(days=28)],
            }
        ),
    )
    blind = label_blind_share(data, start.to_pydatetime(), delay=7)
    assert (blind["terminal_frauds"], blind["terminal_frauds_label_blind"]) == (10, 7)
    assert blind["recall_ceiling_without_early_signal"] == 0.3  # days 7, 8, 9 visible
    assert blind["recall_ceiling_at_payment_time"] == 0.2  # days 8, 9

    # a label that came early (a dispute on day 3 of the day-1 payment) shows the compromise
    # from day 3 on to the nightly run (the end of the day), to the stream from that moment
    came = [moment + pd.Timedelta(days=7) for moment in at]
    came[1] = start + pd.Timedelta(days=3, hours=13)
    data.labels["labelled_at"] = came
    early = label_blind_share(data, start.to_pydatetime(), delay=7)
    assert early["terminal_frauds_label_blind"] == 3  # days 0, 1, 2
    assert early["recall_ceiling_at_payment_time"] == 0.6  # days 0-3 (day 3's at 12:00)
    # labels the full delay late: as without the column
    data.labels["labelled_at"] = [moment + pd.Timedelta(days=7) for moment in at]
    assert label_blind_share(data, start.to_pydatetime(), delay=7) == blind


def test_labels_that_come_at_once_are_read_from_the_next_day() -> None:
    """Data labelled at once (delay 0): the engine reads them with delay 1, never a payment's
    own day (the engine refuses 0)."""
    args = ["bench", "detection", "--seeds", "5", "--terminals-per-customer", "2.0", *SMALL]
    refused = runner.invoke(cli, [*args, "--param", "label_delay_days=0"])
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert "--param label_delay_days=0: Input should be greater than or equal to 1" in (
        refused.output
    )
    result = runner.invoke(cli, [*args, "--set", "label_delay_days=0"])
    assert result.exit_code == 0, result.output


def test_bench_detection_refuses_an_unknown_parameter_without_a_traceback() -> None:
    result = runner.invoke(cli, ["bench", "detection", *SMALL, "--set", "no_such_field=1"])
    assert result.exit_code == 1
    assert "SyntheticConfig field" in result.output and "Traceback" not in result.output
    result = runner.invoke(cli, ["bench", "detection", *SMALL, "--seeds", "x"])
    assert result.exit_code == 1 and "--seeds" in result.output
    args = ["--set", "card_misuse_factor_min=6.0", "--set", "card_misuse_factor_max=5.0"]
    result = runner.invoke(cli, ["bench", "detection", *SMALL, *args])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "--set: the card misuse factor range must satisfy 1 <= min <= max" in result.output


def test_the_threshold_study_keeps_the_rules_flags_below_a_kept_cut() -> None:
    # round 8c: a `+kept` cut (and round 9's `+added`) flags what the rules flag below it,
    # the cut on the score alone does not; all count the rule flags below the cut
    scored = pd.DataFrame(
        {
            "is_fraud": [1, 0, 1, 0],
            "score": [0.9, 0.6, 0.6, 0.2],
            "occurred_at": pd.to_datetime(["2025-01-01"] * 4, utc=True),
        }
    )
    kept = np.array([False, True, True, False])
    study = threshold_study(
        scored,
        datetime(2025, 1, 1, tzinfo=UTC),
        {
            "bound": {"threshold": 0.8},
            "bound+kept": {"threshold": 0.8},
            "bound+added": {"threshold": 0.95},
        },
        kept,
    )
    alone, union = study["bound"]["month"], study["bound+kept"]["month"]
    added = study["bound+added"]["month"]
    assert (alone["flagged"], alone["recall"]) == (1, 0.5)
    assert (union["flagged"], union["precision"], union["recall"]) == (3, 0.6667, 1.0)
    assert (added["flagged"], added["precision"], added["recall"]) == (2, 0.5, 0.5)
    assert alone["rule_flags_below"] == union["rule_flags_below"] == 2
    assert alone["frauds_among_them"] == 1


def _usd_payments(rows: list[tuple], day: pd.Timestamp) -> pd.DataFrame:
    """Payments in USD at one terminal from (external_id, user, amount, days after `day`, …)."""
    return pd.DataFrame(
        {
            "external_id": [r[0] for r in rows],
            "user_id": [r[1] for r in rows],
            "terminal_id": 7,
            "amount": [r[2] for r in rows],
            "currency": "USD",
            "occurred_at": [day + pd.Timedelta(days=r[3]) for r in rows],
        }
    )


def test_a_card_frauds_amount_is_weighed_against_its_customers_legitimate_payments() -> None:
    """`amount_to_usual`: over the median of the customer's legitimate payments of the 30 days
    before (the frauds before it and the payments after it left out); NaN without any."""
    from types import SimpleNamespace

    from ledgerguard.load.bench.detection_errors import _usual_bins, amount_to_usual

    day = pd.Timestamp("2026-03-01", tz="UTC")
    rows = [  # (external_id, user, amount, days after `day`, fraud)
        ("old", 1, "1000.00", -40, False),  # outside the 30 days
        ("a", 1, "10.00", 0, False),
        ("b", 1, "12.00", 1, False),
        ("c", 1, "14.00", 2, False),
        ("big", 1, "400.00", 3, True),  # a fraud: not part of the usual amounts
        ("small", 1, "6.00", 4, True),
        ("later", 1, "900.00", 9, False),  # after the frauds: not part of their baseline
        ("new", 2, "50.00", 4, True),
    ]
    transactions = _usd_payments(rows, day)
    labels = pd.DataFrame({"is_fraud": [int(r[4]) for r in rows]})
    data = SimpleNamespace(transactions=transactions, labels=labels)
    ratios = amount_to_usual(data, ["small", "new", "big"])
    np.testing.assert_allclose(ratios[[0, 2]], [6 / 12, 400 / 12])
    assert np.isnan(ratios[1])
    bins = _usual_bins(ratios)
    assert (bins["below 1x"], bins["3x+"], bins["no usual amount"]) == (1, 1, 1)
    assert sum(bins.values()) == 3


def test_the_card_oracle_flags_payments_in_compromise_windows_by_their_usual_amount() -> None:
    """`card_amount_bound`: only the scored payments inside a card's compromise window count,
    other patterns' frauds are left out, and each bar's recall and precision follow."""
    from types import SimpleNamespace

    from ledgerguard.load.bench.detection_errors import card_amount_bound

    day = pd.Timestamp("2026-03-01", tz="UTC")
    rows = [  # (external_id, user, amount, days after `day`, pattern)
        *[(f"usual{k}", 1, "10.00", k, "") for k in range(5)],
        ("triple", 1, "30.00", 6, "spending_anomaly"),
        ("double", 1, "22.00", 7, "spending_anomaly"),
        ("own", 1, "21.00", 8, ""),  # legitimate, 2.1x: a false alarm at bar 2
        ("shop", 1, "90.00", 9, "terminal_compromise"),  # another pattern: left out
        ("after", 1, "95.00", 30, ""),  # after the window: not the oracle's
        ("other", 2, "99.00", 8, ""),  # another customer: not compromised
        ("early", 1, "80.00", 4, "spending_anomaly"),  # before the scored month
    ]
    transactions = _usd_payments(rows, day)
    labels = pd.DataFrame(
        {"is_fraud": [int(bool(r[4])) for r in rows], "pattern": [r[4] or None for r in rows]}
    )
    events = pd.DataFrame(
        {
            "pattern": ["spending_anomaly"],
            "user_id": [1],
            "terminal_id": [-1],
            "start": [day + pd.Timedelta(days=4)],
            "end": [day + pd.Timedelta(days=18)],
        }
    )
    data = SimpleNamespace(transactions=transactions, labels=labels, events=events)
    bound = card_amount_bound(data, day + pd.Timedelta(days=5), label_blind_frauds=0)
    assert (bound["card_frauds"], bound["payments_in_compromises"]) == (2, 3)
    # three frauds scored ("shop" too): the oracle misses "double" at 2.5
    assert bound["recall_reference"] == round(1 - 1 / 3, 4)
    blind = card_amount_bound(data, day + pd.Timedelta(days=5), label_blind_frauds=1)
    assert blind["recall_reference"] == round(1 - 2 / 3, 4)
    assert bound["by_bar"] == {
        "2.0": {"recall": 1.0, "precision": round(2 / 3, 4)},
        "2.25": {"recall": 0.5, "precision": 1.0},
        "2.5": {"recall": 0.5, "precision": 1.0},
        "3.0": {"recall": 0.5, "precision": 1.0},
    }
