"""Average precision and the evaluation table on tiny known cases; `fraud evaluate` and `fraud
train` on files (in memory: no server, no password)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import AliasChoices
from typer.testing import CliRunner

from ledgerguard.cli.main import app
from ledgerguard.fraud.engine.metrics import average_precision, threshold_for_precision
from ledgerguard.fraud.evaluate import evaluate
from ledgerguard.fraud.synthetic import SyntheticConfig, generate
from ledgerguard.fraud.synthetic_files import write_dataset


def test_average_precision_known_values():
    assert (
        average_precision(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.1])) == (1 + 2 / 3) / 2
    )
    assert average_precision(np.array([1, 1]), np.array([0.5, 0.5])) == 1.0
    # ties between a fraud and a legitimate row enter the curve together
    assert average_precision(np.array([1, 0]), np.array([0.5, 0.5])) == 0.5
    assert math.isnan(average_precision(np.array([0, 0]), np.array([0.1, 0.2])))


def test_precision_per_pattern_is_against_all_false_alarms():
    frame = pd.DataFrame(
        {
            "is_fraud": [1, 1, 1, 0, 0],
            "pattern": ["a", "a", "b", "", ""],
            "score": [0.9, 0.2, 0.8, 0.7, 0.0],
            "flagged": [True, False, True, True, False],
        }
    )
    table = evaluate(frame).set_index("pattern")
    assert table.loc["a", "recall"] == 0.5 and table.loc["a", "precision"] == 0.5
    assert table.loc["b", "recall"] == 1.0
    assert table.loc["overall", "detected"] == 2 and table.loc["overall", "precision"] == 2 / 3


def test_the_threshold_keeps_the_target_precision_from_the_top_down():
    score = np.array([0.99, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3])
    fraud = np.array([1, 1, 1, 0, 1, 1, 1, 0])
    # cuts: 1/1, 2/2, 3/3, 3/4 (0.75 < 0.8: stop here), 4/5, 5/6, 6/7 (0.857, a lucky dip)
    assert threshold_for_precision(fraud, score, 0.8) == 0.8
    assert threshold_for_precision(fraud, score, 0.7) == 0.3  # every cut keeps >= 0.7
    assert threshold_for_precision(np.array([0, 1]), np.array([0.9, 0.1]), 0.9) == 0.9
    assert threshold_for_precision(np.array([]), np.array([]), 0.9) == 1.0


def _no_secrets_env(store: Path) -> dict[str, str | None]:
    """The environment of a shell with no database password at all (None unsets a variable in
    the runner), the model store in `store`."""
    from ledgerguard.settings import Settings
    from ledgerguard.settings.secrets import SECRET_FIELDS

    names: dict[str, str | None] = {}
    for field in SECRET_FIELDS:
        alias = Settings.model_fields[field].validation_alias
        choices = alias.choices if isinstance(alias, AliasChoices) else []
        names |= {str(name): None for name in [*choices, f"LEDGERGUARD_{field.upper()}"]}
    return names | {"LEDGERGUARD_FRAUD__MODEL_STORE_DIR": str(store)}


def test_evaluating_and_training_on_files_need_no_database_password(tmp_path: Path):
    """In memory, the engine reads only its own parameters: an analyst scoring a labelled file
    sets no password; a bad fraud parameter is still refused by name, and a command that reaches
    the servers still asks for the passwords."""
    runner = CliRunner()
    env = _no_secrets_env(tmp_path / "models")
    data = generate(SyntheticConfig(customers=300, terminals=150, days=20, seed=5))
    transactions, labels = write_dataset(data, tmp_path, name="t")
    evaluated = runner.invoke(
        app, ["fraud", "evaluate", str(transactions), str(labels), "--json"], env=env
    )
    assert evaluated.exit_code == 0, evaluated.output
    overall = {row["pattern"]: row for row in json.loads(evaluated.stdout)}["overall"]
    assert overall["positives"] > 0 and overall["detected"] > 0
    trained = runner.invoke(
        app,
        ["fraud", "train", str(transactions), str(labels), "--test-days", "5", "--json"],
        env=env,
    )
    assert trained.exit_code == 0, trained.output
    assert (tmp_path / "models" / json.loads(trained.stdout)["version"]).is_dir()

    bad = runner.invoke(
        app,
        ["fraud", "evaluate", str(transactions), str(labels)],
        env=env | {"LEDGERGUARD_FRAUD__ANOMALY_RATIO": "0.5"},
    )
    assert bad.exit_code == 2 and "fraud.anomaly_ratio" in bad.output
    assert "PASSWORD" not in bad.output
    on_the_replica = runner.invoke(app, ["fraud", "train", "--json"], env=env)
    assert on_the_replica.exit_code == 2 and "MYSQL_ROOT_PASSWORD is not set" in (
        on_the_replica.output
    )


def test_a_file_without_a_column_the_engine_reads_is_refused_by_name(tmp_path: Path):
    runner = CliRunner()
    env = _no_secrets_env(tmp_path / "models")
    data = generate(SyntheticConfig(customers=50, terminals=20, days=3, seed=5))
    transactions, labels = write_dataset(data, tmp_path, name="t")
    frame = pd.read_csv(transactions, dtype=str)
    no_terminal = tmp_path / "no_terminal.csv"
    frame.drop(columns=["terminal_id"]).to_csv(no_terminal, index=False)
    refused = runner.invoke(app, ["fraud", "evaluate", str(no_terminal), str(labels)], env=env)
    assert refused.exit_code == 1
    assert "transactions file's header must name" in refused.output
    assert "missing: terminal_id" in refused.output
    no_flag = tmp_path / "no_flag.csv"
    pd.read_csv(labels, dtype=str).drop(columns=["is_fraud"]).to_csv(no_flag, index=False)
    refused = runner.invoke(app, ["fraud", "train", str(transactions), str(no_flag)], env=env)
    assert refused.exit_code == 1 and "missing: is_fraud" in refused.output
    assert not (tmp_path / "models").exists()  # nothing written
