"""`ledgerguard fraud train`: a model on the engine's features, judged on later days."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ledgerguard.fraud.model import TrainingError, load_model, train_model
from ledgerguard.fraud.synthetic import SyntheticConfig, generate, write_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pd.DataFrame]:
    data = generate(SyntheticConfig(customers=600, terminals=300, days=40, seed=3))
    tx_path, labels_path = write_dataset(data, tmp_path_factory.mktemp("train"), name="t")
    transactions = pd.read_csv(tx_path, dtype=str, keep_default_na=False)
    labels = pd.read_csv(labels_path, dtype={"external_id": str}, keep_default_na=False)
    return transactions, labels


def test_a_model_is_trained_on_early_days_and_judged_on_the_last(
    dataset: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
):
    transactions, labels = dataset
    out = tmp_path / "models" / "fraud.joblib"
    report = train_model(transactions, labels, out=out, test_days=7)
    assert report.train_rows + report.test_rows == report.rows == len(transactions)
    assert report.test_since == "2025-02-03T00:00:00+00:00"  # the last 7 of 40 days
    assert 0 < report.test_frauds < report.frauds
    assert 0 < report.average_precision_model <= 1 and 0 < report.average_precision_rules <= 1
    assert "terminal_risk_7d" in report.features and "customer_nb_tx_1d" in report.features

    saved = load_model(out)
    assert saved["features"] == report.features and saved["report"]["rows"] == report.rows
    probabilities = saved["model"].predict_proba(np.zeros((3, len(report.features))))[:, 1]
    assert ((probabilities >= 0) & (probabilities <= 1)).all()


def test_labels_without_fraud_cannot_train(
    dataset: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
):
    transactions, labels = dataset
    with pytest.raises(TrainingError, match="needs frauds and legitimate rows"):
        train_model(transactions, labels.assign(is_fraud=0), out=tmp_path / "m.joblib")
    assert not (tmp_path / "m.joblib").exists()
