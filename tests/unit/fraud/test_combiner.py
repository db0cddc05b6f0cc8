"""The learned score combination: fitted by `fraud train`, stored in the card, used to score.

And the other side of it: without a model (or with a version that has no learned
combination) the score is the hand-set noisy-OR, exactly as before.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ledgerguard.fraud import model_store
from ledgerguard.fraud.engine.combiner import ScoreCombiner, input_names
from ledgerguard.fraud.engine.features import build_features
from ledgerguard.fraud.engine.fitting import train_model
from ledgerguard.fraud.engine.frame import engine_frame
from ledgerguard.fraud.engine.model import FraudModel, TrainingError
from ledgerguard.fraud.engine.model_card import TrainReport
from ledgerguard.fraud.engine.rules import RULES
from ledgerguard.fraud.engine.scoring import SOFT_RULE_IDS, score_frame
from ledgerguard.fraud.engine.terminal_history import TerminalHistory, history_in_memory
from ledgerguard.fraud.engine.windows import sort_frame
from ledgerguard.fraud.pipeline import model_of
from ledgerguard.fraud.synthetic import SyntheticConfig, generate
from ledgerguard.fraud.synthetic_files import write_dataset
from ledgerguard.money import FxRates
from ledgerguard.settings.fraud import FraudParameters

START, END = datetime(2025, 2, 3, tzinfo=UTC), datetime(2025, 2, 10, tzinfo=UTC)


@pytest.fixture(scope="module")
def labelled(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, TerminalHistory]:
    """40 days of the realistic generator: the import files' frames, the engine frame (without
    external ids) and its terminal history with every label."""
    data = generate(SyntheticConfig(customers=600, terminals=300, days=40, seed=3))
    tx_path, labels_path = write_dataset(data, tmp_path_factory.mktemp("data"), name="c")
    transactions = pd.read_csv(tx_path, dtype=str, keep_default_na=False)
    labels = pd.read_csv(labels_path, dtype={"external_id": str}, keep_default_na=False)
    frame = engine_frame(transactions, FxRates())
    fraud = frame["external_id"].isin(labels.loc[labels["is_fraud"] == 1, "external_id"])
    history = history_in_memory(
        frame, frame.loc[fraud, "transaction_id"].to_numpy(), FraudParameters()
    )
    return transactions, labels, frame.drop(columns="external_id"), history


@pytest.fixture(scope="module")
def learned(
    labelled: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, TerminalHistory],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[TrainReport, Path]:
    """A version trained with `model_score="learned"` on two validation windows."""
    transactions, labels, _, _ = labelled
    store = tmp_path_factory.mktemp("learned")
    params = FraudParameters(
        model_threshold_windows=2, model_store_dir=store, model_score="learned"
    )
    report = train_model(transactions, labels, store=store, test_days=7, params=params)
    return report, store


def test_fraud_train_fits_the_combination_and_the_card_records_it(
    learned: tuple[TrainReport, Path],
):
    report, store = learned
    assert report.score_combination == "learned" and report.threshold_windows == 2
    card = model_store.card(store, report.version)
    assert card["score_combination"] == "learned"
    entry = card["combiner"]
    assert set(entry["weights"]) == set(input_names(SOFT_RULE_IDS))
    assert all(0 <= w <= 1 for w in entry["weights"].values()) and 0 <= entry["leak"] < 0.1
    assert entry["rows"] > 0 and entry["frauds"] > 0
    # a rule that was right on every row it fired on in these weeks keeps a weight near 1
    # (a noisy-OR does not explain it away), the terminal rule's weight comes from the labels
    assert entry["weights"]["structuring"] > 0.9
    # a rule's firing and its near misses are weighed apart (round 6)
    assert {"velocity", "velocity:near_miss", "terminal_risk:near_miss"} <= set(entry["weights"])
    assert entry["weights"]["terminal_risk"] != FraudParameters().weight_terminal_risk
    model = FraudModel.from_store(store, report.version)
    assert model.combiner is not None
    loaded = dict(zip(model.combiner.inputs, model.combiner.weights, strict=True))
    assert loaded == entry["weights"] and model.combiner.leak == entry["leak"]


def test_the_nightly_and_streaming_model_carries_the_stored_combination(
    learned: tuple[TrainReport, Path],
):
    """`model_of` is how the nightly run, the backtest and the streaming scorer load a model."""
    report, store = learned
    model_store.promote(store, report.version)
    model = model_of(FraudParameters(model_store_dir=store))
    assert model is not None and model.version == report.version
    assert model.combiner == FraudModel.from_store(store, report.version).combiner


def test_the_learned_combination_is_the_score(
    learned: tuple[TrainReport, Path],
    labelled: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, TerminalHistory],
):
    report, store = learned
    _, _, frame, history = labelled
    model = FraudModel.from_store(store, report.version)
    assert model.combiner is not None
    # what the setting says at scoring time does not matter: the version was thresholded for it
    params = FraudParameters(model_score="model")
    rows = score_frame(frame, history, params, start=START, end=END, store_all=True, model=model)
    scored = rows.rows.set_index("transaction_id")

    ordered = sort_frame(frame)
    features = build_features(ordered, history, params)
    data = pd.concat([ordered, features], axis=1)
    ts = data["ts_us"].to_numpy()
    data = data[(ts >= int(START.timestamp() * 1e6)) & (ts < int(END.timestamp() * 1e6))]
    soft = [rule for rule in RULES if not rule.hard]
    strength = np.column_stack([rule.evaluate(data, params).strength for rule in soft])
    fired = strength == 1.0
    assert fired.any() and ((strength > 0) & ~fired).any()  # both kinds of input occur
    # each rule's "fired" (0/1), each rule's near miss (0 where it fired), the model's p
    x = np.column_stack([fired, np.where(fired, 0.0, strength), model.probability(data)])
    assert len(model.combiner.weights) == x.shape[1] == 2 * len(soft) + 1
    legit = (1 - model.combiner.leak) * np.prod(1 - x * np.array(model.combiner.weights), axis=1)
    expected = pd.Series(np.round(1 - legit, 4), index=data["transaction_id"].to_numpy())
    hard = scored["rule_ids"].str.contains("large_amount")
    assert (scored.loc[hard, "score"] == 1.0).all()
    got = scored.loc[~hard, "score"]
    np.testing.assert_allclose(got.to_numpy(), expected.reindex(got.index).to_numpy(), atol=1e-4)
    # the rules' own flags stay (round 8c), whatever the combination scores them
    alone = score_frame(frame, history, params, start=START, end=END, store_all=True).rows
    kept = alone.set_index("transaction_id")["flagged"].reindex(scored.index).to_numpy()
    union = hard | kept | (scored["score"] >= report.threshold)
    assert (scored["flagged"] == union).all()
    assert (scored["model_version"] == report.version).all()
    # the rules still explain the flags, and the model's reason says how it counts
    flagged = scored[scored["flagged"]]
    assert len(flagged) > 0 and (flagged["reasons"].str.len() > 0).all()
    assert scored["reasons"].str.contains(r"\(trained model, learned weight [01]\.\d\d\)").any()

    # and it is this combination: another one gives other scores
    model.combiner = ScoreCombiner(
        inputs=model.combiner.inputs, weights=tuple(0.0 for _ in model.combiner.inputs), leak=0.5
    )
    other = score_frame(frame, history, params, start=START, end=END, store_all=True, model=model)
    others = other.rows.set_index("transaction_id")
    assert (others.loc[~others["rule_ids"].str.contains("large_amount"), "score"] == 0.5).all()


def test_a_card_fitted_on_other_rules_is_refused(learned: tuple[TrainReport, Path]):
    report, store = learned
    path = store / report.version / model_store.CARD_FILE
    card = json.loads(path.read_text())
    card["combiner"]["weights"]["retired_rule"] = 1.0
    path.write_text(json.dumps(card))
    try:
        with pytest.raises(TrainingError, match="train it again"):
            FraudModel.from_store(store, report.version)
    finally:
        del card["combiner"]["weights"]["retired_rule"]
        path.write_text(json.dumps(card))


def test_one_validation_window_trains_the_noisy_or(
    labelled: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, TerminalHistory], tmp_path: Path
):
    """Nothing out of time to fit a combination on: the version is the noisy-OR's, as before."""
    transactions, labels, _, _ = labelled
    params = FraudParameters(model_threshold_windows=1, model_score="learned")
    report = train_model(transactions, labels, store=tmp_path, test_days=7, params=params)
    assert report.score_combination == "noisy_or"
    assert model_store.card(tmp_path, report.version)["combiner"] is None
    assert FraudModel.from_store(tmp_path, report.version).combiner is None


def test_rules_alone_score_exactly_as_before(
    labelled: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, TerminalHistory],
):
    """The rules-only verdicts of this data set, pinned from the engine before the learned
    combination (135279d): same scores, flags, rule ids and reasons, row for row, with round
    7's two rule changes and round 8a's off: the learnt compromise lengths
    (`terminal_compromise_history_days=0`), compromises as runs of several defrauded customers
    (`terminal_compromise_min_customers=1`) and the repeat bar of `spending_anomaly` (out of
    reach), round 9b's off (`terminal_risk_run_share=false`) and session 15's fired strength
    by risk (`terminal_risk_strength_by_risk=false`). With round 7, 8a and session 15 on,
    every changed verdict is a payment the lowered bar flags, saying so, or a `terminal_risk`
    row the learnt lengths or a one-customer run calm (scored lower); with 9b on too (the
    default), every further change is a `terminal_risk` row the run's share raises.

    All at 135279d's label horizon: it read the labels of days before d - 7, which is
    `label_delay_days=8` since the horizon is day d - delay itself (session 13; its reason
    text said "ending 7 days before" for those same days)."""
    _, _, frame, history = labelled
    old_horizon = 8
    before = FraudParameters(
        label_delay_days=old_horizon,
        terminal_compromise_history_days=0,
        terminal_compromise_min_customers=1,
        anomaly_repeat_min=1_000_000,
        terminal_risk_run_share=False,
        terminal_risk_strength_by_risk=False,
        store_min_score=0.1,  # 135279d's storage bar (0.01 since session 17)
    )
    rows = score_frame(frame, history, before, start=START, end=END).rows
    rows = rows.sort_values("transaction_id")
    columns = ("transaction_id", "score", "flagged", "rule_ids", "reasons", "usd_units")
    text = "\n".join(
        f"{t},{s:.4f},{int(f)},{r},{_words_of_135279d(w, u)}"
        for t, s, f, r, w, u in zip(*(rows[name] for name in columns), strict=True)
    ).replace("ending 8 days before", "ending 7 days before")
    assert (len(rows), int(rows["flagged"].sum())) == PINNED_COUNTS
    assert hashlib.sha256(text.encode()).hexdigest() == PINNED_DIGEST
    # the same storage bar throughout, so every comparison is of the same rows
    without_9b = FraudParameters(
        label_delay_days=old_horizon, terminal_risk_run_share=False, store_min_score=0.1
    )
    now = score_frame(frame, history, without_9b, start=START, end=END).rows
    merged = now.merge(rows, on="transaction_id", how="left", suffixes=("", "_before"))
    changed = merged[merged["score"] != merged["score_before"]]
    lowered_bar = changed["reasons"].str.contains("payments of the last 7 days at 3x or more")
    assert lowered_bar.any() and changed[lowered_bar]["flagged"].all()
    calmed = changed[~lowered_bar]
    assert calmed["rule_ids_before"].str.contains("terminal_risk").all()
    assert (calmed["score"] < calmed["score_before"]).all()
    # 9b on: the run's share never lowers a score (it is a maximum), and every terminal_risk
    # reason with a run says it (the rise itself: test_survival's first-labelled-days test)
    defaults = FraudParameters(label_delay_days=old_horizon, store_min_score=0.1)
    default = score_frame(frame, history, defaults, start=START, end=END).rows
    merged = default.merge(now, on="transaction_id", suffixes=("", "_before"))
    assert len(merged) == len(now) and (merged["score"] >= merged["score_before"]).all()
    runs = merged["reasons"].str.contains("fraud on every labelled day")
    assert runs.any() and merged.loc[runs, "reasons"].str.contains("of its payments on").all()
    assert not merged["reasons_before"].str.contains("of its payments on").any()


def _words_of_135279d(reasons: str, usd_units: int) -> str:
    """The reasons as 135279d worded them, for its digest: the words changed in session 17
    (`large_amount` names the amount as paid, thousands separated; `terminal_risk` says "5 of
    terminal 42's 6 payments"), what they say did not, and every other reason is as it was."""
    old_large = (
        f"large_amount: {Decimal(int(usd_units)).scaleb(-4)} USD-equivalent is above 10000.00 USD"
    )
    reasons = re.sub(r"large_amount: [^;]*? is above 10,000\.00 USD", old_large, reasons)
    return re.sub(
        r"terminal_risk: (\d+) of terminal (\d+)'s (\d+) payments in the (\d+) days up to (\d+) "
        r"days before this one confirmed as fraud \(labels known by then; (\d+%) with the latest "
        r"days weighted most\)",
        r"terminal_risk: terminal \2 had \1/\3 confirmed fraud in the \4 days ending \5 days "
        r"before this transaction (labels known by then), \6 weighted towards the latest days",
        reasons,
    )


#: Stored rows and flags of `test_rules_alone_score_exactly_as_before`, and the digest of
#: their "id,score,flagged,rule_ids,reasons" lines, computed with 135279d's engine.
PINNED_COUNTS = (80, 62)
PINNED_DIGEST = "471277441c56f9ff2e6140d299b82884c688d10fc086e451bb5cd941b0bfff04"


def test_a_rule_that_fired_keeps_its_weight_whatever_its_near_misses():
    """Round 5's fault, in miniature: every row the rule fired on is fraud and the model finds
    them too, while the rule's near misses are all legitimate. With one weight per rule the
    near misses pulled it towards 0 (dev seed 13: velocity 0.003); with a weight for "fired"
    apart, the firing keeps its evidence and only the near misses' weight falls."""
    rng = np.random.default_rng(5)
    n = 20_000
    fired = rng.random(n) < 0.01
    near = ~fired & (rng.random(n) < 0.2)
    strength = np.where(fired, 1.0, np.where(near, rng.uniform(0.2, 0.5, n), 0.0))
    is_fraud = fired | (rng.random(n) < 0.002)
    probability = np.where(fired, 0.97, np.where(is_fraud, 0.6, 0.01))
    rules = ("velocity",)
    split = ScoreCombiner.fit(rules, strength[:, None], probability, is_fraud)
    weights = dict(zip(split.inputs, split.weights, strict=True))
    assert split.inputs == ("velocity", "velocity:near_miss", "model")
    assert weights["velocity"] > 0.9 and weights["velocity:near_miss"] < 0.05
    scores = split.score(strength[:, None], probability)
    assert scores[fired].min() > scores[~fired & ~is_fraud].max()


def test_a_version_fitted_with_one_weight_per_rule_is_scored_as_it_was():
    """A card written by round 5 (one input per rule) still loads and scores w_i x_i."""
    names = (*SOFT_RULE_IDS, "model")
    weights = {name: 0.1 * (i + 1) for i, name in enumerate(names)}
    combiner = ScoreCombiner.from_card({"weights": weights, "leak": 0.01}, SOFT_RULE_IDS)
    assert not combiner.split and combiner.inputs == input_names(SOFT_RULE_IDS, split=False)
    strength = np.array([[1.0, 0.3, 0.0, 0.5], [0.0, 0.0, 0.0, 0.0]])
    probability = np.array([0.5, 0.2])
    w = np.array([weights[name] for name in names])
    x = np.column_stack([strength, probability])
    expected = np.round(1 - 0.99 * np.prod(1 - x * w, axis=1), 4)
    np.testing.assert_allclose(combiner.score(strength, probability), expected)
