"""The fraud engine through the CLI: generate, import (good and bad files), analyze, evaluate."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ledgerguard.cli.main import app
from ledgerguard.cluster.local import LocalCluster
from ledgerguard.settings import Settings
from tests.support import settings_env

runner = CliRunner()


@pytest.fixture
def env(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)
    return settings_env(settings)


def test_generate_import_analyze_evaluate(
    healthy_cluster: LocalCluster, settings: Settings, env: dict[str, str], tmp_path: Path
):
    generated = runner.invoke(
        app,
        [
            "generate",
            "--rows",
            "3000",
            "--days",
            "10",
            "--start",
            "2024-06-01",
            "--seed",
            "3",
            "--out",
            str(tmp_path),
            "--name",
            "cli",
        ],
        env=env,
    )
    assert generated.exit_code == 0, generated.output
    transactions, labels = tmp_path / "cli_transactions.csv", tmp_path / "cli_labels.csv"
    # the generator's external ids are shared by every run with the same seed: make them unique
    text = transactions.read_text().replace("syn-", "cli-")
    transactions.write_text(text)
    labels.write_text(labels.read_text().replace("syn-", "cli-"))
    imported = runner.invoke(app, ["import", "transactions", str(transactions), "--json"], env=env)
    assert imported.exit_code == 0, imported.output
    assert json.loads(imported.stdout)["inserted"] == len(text.splitlines()) - 1
    assert runner.invoke(app, ["import", "labels", str(labels)], env=env).exit_code == 0
    healthy_cluster.wait_for_replica(timeout=30)
    analysed = runner.invoke(
        app, ["fraud", "analyze", "--start", "2024-06-05", "--end", "2024-06-07", "--json"], env=env
    )
    assert analysed.exit_code == 0, analysed.output
    result = json.loads(analysed.stdout)
    assert result["analysed"] > 0
    report = settings.reports_dir / "fraud_report_2024-06-05.csv"
    assert report.read_text().splitlines()[0] == "Transaction ID,User ID,Amount,Currency,Status"
    evaluated = runner.invoke(
        app, ["fraud", "evaluate", str(transactions), str(labels), "--json"], env=env
    )
    assert evaluated.exit_code == 0, evaluated.output
    patterns = {row["pattern"] for row in json.loads(evaluated.stdout)}
    assert "overall" in patterns


def test_bad_import_file_is_refused_with_line_numbers(
    healthy_cluster: LocalCluster, env: dict[str, str], tmp_path: Path
):
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "external_id,user_id,terminal_id,amount,currency,occurred_at\n"
        "bad-1,1,1,10.00,USD,2024-01-01T00:00:00Z\n"
        "bad-2,1,1,-5,USD,2024-01-01T00:00:00Z\n"
        "bad-3,1,1,1.234,USD,2024-01-01T00:00:00Z\n"
        "bad-4,1,1,1,ZZZ,2024-01-01T00:00:00Z\n"
    )
    result = runner.invoke(app, ["import", "transactions", str(bad)], env=env)
    assert result.exit_code == 1, result.output
    assert "line 3" in result.output and "line 4" in result.output and "line 5" in result.output
    assert "nothing was loaded" in result.output


#: far from the dates other tests analyse, so the benchmark's rows never enter their intervals
#: (in the past: imports refuse future dates, as the API does)
BENCH_ARGS = ["bench", "analysis", "--rows", "2000", "--seed", "11", "--start", "2003-01-01"]


def test_bench_analysis_smoke(healthy_cluster: LocalCluster, env: dict[str, str]):
    """The benchmark command runs end to end on a small data set (no timing asserted)."""
    result = runner.invoke(app, BENCH_ARGS, env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["rows"] > 0 and report["analysis_seconds"] > 0
    assert report["analysis_rows_read"] >= report["analysed"] > 0
    assert report["peak_rss_mib"] > 0 and report["load_skipped"] is False
    # Same seed and size again: the data set is found stored, not generated and imported again.
    again = runner.invoke(app, BENCH_ARGS, env=env)
    assert again.exit_code == 0, again.output
    second = json.loads(again.stdout)
    assert second["load_skipped"] is True and "import_seconds" not in second
    assert (second["rows"], second["analysed"]) == (report["rows"], report["analysed"])
    # --all-days scores every stored transaction of the data set, history days included.
    whole = runner.invoke(app, [*BENCH_ARGS, "--all-days"], env=env)
    assert whole.exit_code == 0, whole.output
    everything = json.loads(whole.stdout)
    assert everything["analysed"] == everything["analysis_rows_read"] > second["analysed"]
    assert everything["analysed_interval"][0] == "2003-01-01T00:00:00+00:00"


def test_bench_data_set_reports_each_stage_to_a_progress_bar(
    healthy_cluster: LocalCluster, settings: Settings
):
    """Generating, writing and importing the data set take minutes at full size: each stage
    reports how far it is (the CLI shows it as a progress bar)."""
    from ledgerguard.load.bench.analysis import ensure_dataset

    seen: dict[str, list[tuple[int, int | None]]] = {}
    _, load = ensure_dataset(
        settings,
        1000,
        seed=12,
        start=date(2003, 1, 1),
        progress=lambda stage, done, total: seen.setdefault(stage, []).append((done, total)),
    )
    assert load["load_skipped"] is False
    assert list(seen) == [
        "generating 1,000 synthetic transactions",
        "writing the CSV files",
        "importing the transactions",
        "importing the labels",
    ]
    for stage, calls in seen.items():
        done, total = calls[-1]
        assert done == total and total > 0, (stage, calls)
        assert [d for d, _ in calls] == sorted(d for d, _ in calls), (stage, calls)
    assert all(calls[0] == (0, None) for calls in seen.values()), seen  # named at once


def test_train_prints_both_average_precisions_and_writes_the_model(
    settings: Settings, env: dict[str, str], tmp_path: Path
):
    args = ["--rows", "30000", "--days", "30", "--seed", "4", "--out", str(tmp_path)]
    assert runner.invoke(app, ["generate", *args, "--name", "tr"], env=env).exit_code == 0
    files = [str(tmp_path / "tr_transactions.csv"), str(tmp_path / "tr_labels.csv")]
    store = tmp_path / "m"
    result = runner.invoke(
        app, ["fraud", "train", *files, "--store", str(store), "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["test_frauds"] > 0 and (store / report["version"] / "model.joblib").exists()
    assert (store / report["version"] / "card.json").exists()
    assert 0 < report["average_precision_model"] <= 1
    assert 0 < report["average_precision_rules"] <= 1
    # the two rules' cuts on what the model adds and on the score, the rules' own flags kept
    # below them (the default)
    candidates = report["threshold_candidates"]
    assert set(candidates) == {"pooled+added", "bound+added", "pooled+kept", "bound+kept"}
    assert report["threshold_rule"] == "bound+added" and candidates["pooled+added"]["threshold"] > 0
    said = runner.invoke(app, ["fraud", "train", *files, "--store", str(store)], env=env)
    assert said.exit_code == 0, said.output
    assert f"rule {report['threshold_rule']}: " in said.output and "per window " in said.output
    too_long = runner.invoke(
        app, ["fraud", "train", *files, "--store", str(store), "--test-days", "40"], env=env
    )
    assert too_long.exit_code == 1 and "needs frauds and legitimate rows" in too_long.output


def test_backtest_names_an_unknown_parameter_and_prints_both_configurations(
    healthy_cluster: LocalCluster, settings: Settings, env: dict[str, str], tmp_path: Path
):
    draft = tmp_path / "draft.json"
    draft.write_text('{"anomaly_ratoi": 4}')
    interval = ["fraud", "backtest", "--start", "2025-02-05", "--end", "2025-02-06"]
    refused = runner.invoke(app, [*interval, "--params", str(draft)], env=env)
    assert refused.exit_code == 1 and "unknown parameter anomaly_ratoi" in refused.output
    draft.write_text('{"anomaly_ratio": 4}')
    result = runner.invoke(
        app, [*interval, "--params", str(draft), "--model", "none", "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["draft"]["model_version"] is None
    assert figures["current"]["analysed"] == figures["draft"]["analysed"]
    assert set(figures["current"]["rules"]) >= {"large_amount", "terminal_risk"}
    unknown = runner.invoke(app, [*interval, "--model", "0042"], env=env)
    assert unknown.exit_code == 1 and "no model version '0042'" in unknown.output
