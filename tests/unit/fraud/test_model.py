"""`ledgerguard fraud train`: a model on the engine's features, judged on later days."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ledgerguard.fraud import model_store
from ledgerguard.fraud.engine.features import build_features
from ledgerguard.fraud.engine.fitting import train_model
from ledgerguard.fraud.engine.frame import engine_frame
from ledgerguard.fraud.engine.model import FraudModel, TrainingError
from ledgerguard.fraud.engine.model_card import TrainReport, promotion_gate
from ledgerguard.fraud.engine.scoring import score_frame
from ledgerguard.fraud.engine.terminal_history import TerminalHistory, history_in_memory
from ledgerguard.fraud.engine.windows import sort_frame
from ledgerguard.fraud.errors import FraudAnalysisError
from ledgerguard.fraud.pipeline import analyze_interval
from ledgerguard.fraud.synthetic import SyntheticConfig, generate
from ledgerguard.fraud.synthetic_files import write_dataset
from ledgerguard.money import FxRates
from ledgerguard.settings.fraud import FraudParameters
from tests.support import make_settings


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pd.DataFrame]:
    data = generate(SyntheticConfig(customers=600, terminals=300, days=40, seed=3))
    tx_path, labels_path = write_dataset(data, tmp_path_factory.mktemp("train"), name="t")
    transactions = pd.read_csv(tx_path, dtype=str, keep_default_na=False)
    labels = pd.read_csv(labels_path, dtype={"external_id": str}, keep_default_na=False)
    return transactions, labels


@pytest.fixture(scope="module")
def trained(
    dataset: tuple[pd.DataFrame, pd.DataFrame], tmp_path_factory: pytest.TempPathFactory
) -> tuple[TrainReport, FraudModel, pd.DataFrame, TerminalHistory]:
    """One model (one validation window: each more is one more training), the frame without
    external ids and its terminal history with every label."""
    transactions, labels = dataset
    report = train_model(
        transactions,
        labels,
        store=tmp_path_factory.mktemp("trained"),
        test_days=7,
        params=FraudParameters(model_threshold_windows=1),
    )
    frame = engine_frame(transactions, FxRates())
    fraud_ids = frame.loc[frame["external_id"].isin(labels["external_id"]), "transaction_id"]
    history = history_in_memory(frame, fraud_ids.to_numpy(), FraudParameters())
    model = FraudModel.load(Path(report.model_path))
    return report, model, frame.drop(columns="external_id"), history


def test_a_model_is_trained_on_early_days_and_judged_on_the_last(
    dataset: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
):
    transactions, labels = dataset
    store = tmp_path / "models"
    # each window is one more training
    params = FraudParameters(model_threshold_windows=2, threshold_rule="bound")
    report = train_model(transactions, labels, store=store, test_days=7, params=params)
    assert report.train_rows + report.test_rows == report.rows == len(transactions)
    assert report.test_since == "2025-02-03T00:00:00+00:00"  # the last 7 of 40 days
    assert 0 < report.test_frauds < report.frauds
    assert 0 < report.average_precision_model <= 1 and 0 < report.average_precision_rules <= 1
    assert "terminal_risk_7d" in report.features and "customer_nb_tx_1d" in report.features
    assert "terminal_recent_risk" in report.features
    # threshold chosen on the last week pooled with the one before (scored by an earlier model)
    assert report.threshold_windows == 2

    card = model_store.card(store, report.version)
    assert report.version == "0001" and card["features"] == report.features
    assert card["training_interval"] == ["2025-01-01T00:00:00+00:00", report.test_since]
    assert card["threshold"] == report.threshold and "scikit-learn" in card["libraries"]
    assert card["metrics"]["average_precision_rules"] == report.average_precision_rules
    # the threshold and why: the rule, its bound, each window's precision there (round 8b)
    # cut on what the model adds, the rules' own flags kept below it (round 9); the other
    # rule's cut and the cut on the score over every row (round 8c) kept for comparison
    assert report.threshold_rule == "bound+added" and "lower bound" in report.threshold_reason
    assert "what the model adds" in report.threshold_reason
    assert "rules' own flags are kept below it" in report.threshold_reason
    assert len(report.window_precision) == 2
    candidates = report.threshold_candidates
    assert set(candidates) == {"bound+added", "pooled+added", "bound+kept", "pooled+kept"}
    assert candidates["bound+added"]["threshold"] == report.threshold
    assert candidates["bound+added"]["window_precision"] == report.window_precision
    assert card["metrics"]["threshold_reason"] == report.threshold_reason
    assert card["metrics"]["window_precision"] == report.window_precision
    assert report.promoted == (
        report.average_precision_combined > report.average_precision_rules
    ), report.promotion_reason
    model = FraudModel.from_store(store, report.version)
    probabilities = model.probability(
        pd.DataFrame(np.zeros((3, len(report.features))), columns=report.features)
    )
    assert ((probabilities >= 0) & (probabilities <= 1)).all()


def test_probabilities_are_scikit_learns_computed_on_one_thread(
    dataset: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
):
    from threadpoolctl import threadpool_info

    transactions, labels = dataset
    report = train_model(transactions, labels, store=tmp_path / "m", test_days=7)
    model = FraudModel.from_store(tmp_path / "m", report.version)
    rng = np.random.default_rng(1)
    data = pd.DataFrame(rng.exponential(5, (5_000, len(report.features))), columns=report.features)
    data.iloc[::7, 3] = np.nan
    classifier = model._model
    expected = classifier.predict_proba(data.to_numpy(dtype=float))[:, 1]

    def openmp_threads() -> set[int]:
        return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "openmp"}

    seen: list[set[int]] = []

    class Spy:
        def predict_proba(self, x: np.ndarray) -> np.ndarray:
            seen.append(openmp_threads())
            return classifier.predict_proba(x)

    before = openmp_threads()
    model._model = Spy()
    assert np.array_equal(model.probability(data), expected)  # bit for bit
    assert seen == [{1}] and openmp_threads() == before  # one thread, then as it was


def test_a_new_version_is_judged_against_the_promoted_one(
    dataset: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
):
    transactions, labels = dataset
    store = tmp_path / "models"
    one_window = FraudParameters(model_threshold_windows=1, threshold_rule="bound")
    train_model(transactions, labels, store=store, test_days=7, params=one_window)
    model_store.promote(store, "0001")
    second = train_model(
        transactions, labels, store=store, test_days=7, promote=False, params=one_window
    )
    assert second.version == "0002" and second.current_version == "0001"
    pooled = train_model(
        transactions,
        labels,
        store=store,
        test_days=7,
        promote=False,
        params=FraudParameters(model_threshold_windows=1, threshold_rule="pooled"),
    )
    # today's rule on the same validation scores: the candidate the bound rule recorded
    assert pooled.threshold == second.threshold_candidates["pooled+added"]["threshold"]
    assert pooled.threshold_rule == "pooled+added" and len(pooled.window_precision) == 1
    assert second.average_precision_current == second.average_precision_combined  # same data
    assert not second.promoted and model_store.promoted(store) == "0001"
    with pytest.raises(model_store.ModelStoreError, match="no model version '0007'"):
        model_store.promote(store, "0007")


@pytest.mark.parametrize(
    ("ap_new", "ap_rules", "ap_current", "promote", "promoted", "why"),
    [
        (0.80, 0.70, None, True, True, "promoted: AP 0.8000 against rules 0.7000"),
        (0.80, 0.70, 0.80, True, True, "and version 0001 0.8000"),  # a tie: the newer labels
        (0.80, 0.70, 0.81, True, False, "below the promoted version 0001 (0.8100)"),
        (0.70, 0.70, None, True, False, "does not beat the rules alone (0.7000)"),
        (float("nan"), 0.70, None, True, False, "does not beat the rules alone"),
        (0.80, 0.70, float("nan"), True, False, "below the promoted version"),
        (0.90, 0.70, None, False, False, "--no-promote"),
    ],
)
def test_the_promotion_gate_promotes_only_a_version_better_than_the_rules_and_the_current(
    ap_new: float,
    ap_rules: float,
    ap_current: float | None,
    promote: bool,
    promoted: bool,
    why: str,
):
    current = None if ap_current is None else "0001"
    verdict, reason = promotion_gate(ap_new, ap_rules, ap_current, current, promote=promote)
    assert verdict is promoted
    assert reason.startswith("promoted" if promoted else "not promoted") and why in reason


def test_labels_without_fraud_cannot_train(
    dataset: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
):
    transactions, labels = dataset
    with pytest.raises(TrainingError, match="needs frauds and legitimate rows"):
        train_model(transactions, labels.assign(is_fraud=0), store=tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_the_model_joins_the_score_as_one_more_signal(
    trained: tuple[TrainReport, FraudModel, pd.DataFrame, TerminalHistory],
):
    report, model, data, history = trained
    assert model.version == report.version and model.threshold == report.threshold
    params = FraudParameters()
    assert params.model_score == "noisy_or" and model.combiner is None
    start, end = datetime(2025, 2, 3, tzinfo=UTC), datetime(2025, 2, 10, tzinfo=UTC)
    rules = score_frame(data, history, params, start=start, end=end, store_all=True)
    both = score_frame(data, history, params, start=start, end=end, store_all=True, model=model)
    assert (both.rows["score"].to_numpy() >= rules.rows["score"].to_numpy()).all()
    assert both.counts_by_rule["model"] > 0 and "model" not in rules.counts_by_rule
    assert both.rows["reasons"].str.contains(r"\(trained model, weight 0.8\)").any()
    named = both.rows[both.rows["rule_ids"].str.contains("model")]
    assert len(named) == both.counts_by_rule["model"]
    assert named["reasons"].str.contains("model: fraud probability").all()
    assert (both.rows["model_version"] == report.version).all()
    assert rules.rows["model_version"].isna().all()
    # flagged: the combined score at the model's threshold, or the rules' own flag (round 8c)
    kept = rules.rows["flagged"].to_numpy()
    expected = kept | (both.rows["score"].to_numpy() >= report.threshold)
    assert (both.rows["flagged"].to_numpy() == expected).all()
    # a page whose rows are all lookback (nothing inside the interval) scores to nothing
    later = datetime(2030, 1, 1, tzinfo=UTC)
    empty = score_frame(data, history, params, start=later, end=later + (end - start), model=model)
    assert empty.rows.empty and empty.analysed == 0


def test_a_rule_flag_survives_a_model_threshold_above_it(
    trained: tuple[TrainReport, FraudModel, pd.DataFrame, TerminalHistory],
):
    # round 8c: the model adds flags to the rules', never removes one
    report, _, data, history = trained
    model = FraudModel.load(Path(report.model_path))
    model.threshold = 0.999
    start, end = datetime(2025, 2, 3, tzinfo=UTC), datetime(2025, 2, 10, tzinfo=UTC)

    def scored(params: FraudParameters, with_model: FraudModel | None) -> pd.DataFrame:
        return score_frame(
            data, history, params, start=start, end=end, store_all=True, model=with_model
        ).rows

    rules = scored(FraudParameters(), None)
    union = scored(FraudParameters(), model)
    kept = rules["flagged"].to_numpy()
    below = kept & (union["score"].to_numpy() < 0.999)
    assert below.sum() > 0  # rule flags the model's threshold alone would drop
    assert (union["flagged"].to_numpy() == kept | (union["score"].to_numpy() >= 0.999)).all()
    # the reasons still say what flagged them: the rules, with their own score
    said = union.loc[below, "reasons"]
    assert said.str.contains(r"rules' own score 0\.\d{4} >= 0\.5 from [a-z_]+ 0\.\d\d").all()
    assert said.str.contains("kept below the model's threshold 0.999").all()
    # the setting off: today's engine, a hard rule or the combined score only
    today = scored(FraudParameters(model_keeps_rule_flags=False), model)
    hard = today["rule_ids"].str.contains("large_amount").to_numpy()
    assert (today["flagged"].to_numpy() == hard | (today["score"].to_numpy() >= 0.999)).all()
    assert not today.loc[below & ~hard, "flagged"].any()
    assert not today["reasons"].str.contains("rules' own score").any()
    assert (today["score"] == union["score"]).all()  # only the flags differ
    # when the model's p is the score, it decides: the soft rules' flags are not kept
    decides = scored(FraudParameters(model_score="model"), model)
    assert (decides["flagged"].to_numpy() == (decides["score"].to_numpy() >= 0.999)).all()


def test_a_missing_model_file_refuses_the_run(tmp_path: Path):
    settings = make_settings(tmp_path)
    settings.fraud.model_path = tmp_path / "nowhere.joblib"
    with pytest.raises(FraudAnalysisError, match="not a model written by"):
        analyze_interval(
            settings, start=datetime(2025, 2, 3, tzinfo=UTC), end=datetime(2025, 2, 4, tzinfo=UTC)
        )


def test_an_unset_model_path_stays_unset_in_child_processes(tmp_path: Path):
    # Airflow tasks and API workers rebuild Settings from `to_env()`: "None" would be a path.
    env = make_settings(tmp_path).to_env()
    assert "LEDGERGUARD_FRAUD__MODEL_PATH" not in env
    chosen = make_settings(tmp_path)
    chosen.fraud.model_path = tmp_path / "m.joblib"
    assert chosen.to_env()["LEDGERGUARD_FRAUD__MODEL_PATH"] == str(tmp_path / "m.joblib")


def test_the_model_probability_is_the_score_and_overrules_soft_rules(
    trained: tuple[TrainReport, FraudModel, pd.DataFrame, TerminalHistory],
):
    """`model_score="model"`: the score is the model's p (hard rules: 1), so a soft rule that
    fired where the model sees no fraud is a reason, not a flag."""
    report, model, data, history = trained
    params = FraudParameters(model_score="model")
    start, end = datetime(2025, 2, 3, tzinfo=UTC), datetime(2025, 2, 10, tzinfo=UTC)
    rows = score_frame(
        data, history, params, start=start, end=end, store_all=True, model=model
    ).rows
    hard = rows["rule_ids"].str.contains("large_amount")
    assert (rows.loc[hard, "score"] == 1.0).all() and rows.loc[hard, "flagged"].all()
    soft = rows[~hard]
    assert (soft["flagged"] == (soft["score"] >= report.threshold)).all()
    # every flag by the model names it, with its role
    assert soft.loc[soft["flagged"], "rule_ids"].str.contains("model").all()
    assert rows["reasons"].str.contains(r"\(trained model, the score\)").any()
    # the score is p itself: a soft rule that fired adds nothing to it
    fired_soft = soft[soft["rule_ids"].str.len() > 0]
    assert len(fired_soft) > 0
    ordered = sort_frame(data)
    features = build_features(ordered, history, params)
    p = pd.Series(model.probability(features), index=ordered["transaction_id"])
    expected = p.reindex(soft["transaction_id"]).round(4).to_numpy()
    np.testing.assert_allclose(soft["score"].to_numpy(), expected, atol=1e-4)
