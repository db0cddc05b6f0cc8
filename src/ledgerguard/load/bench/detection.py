"""`ledgerguard bench detection`: detection quality on the realistic generator, on seeds the
engine was never tuned on (issue #14).

For each seed (and terminal density): generate `days` of Handbook-style traffic, train a model
on all but the last `scored_days` (as `ledgerguard fraud train` does: time-split validation,
threshold for the target precision, promotion gate), then score the last `scored_days` with
the rules alone and with rules + model, and report precision / recall / average precision per
pattern and overall (transactions the pipeline would not store count as score 0). In memory: no
cluster. Per configuration it also reports, per rule (and the model), how many scored rows it
fired on and the share of them that were fraud, so the rule that costs precision shows directly.
The analysis of its errors (misses and false alarms by cause, the label-blind and oracle
ceilings) reads the data's ground truth and lives in `ledgerguard.load.bench.detection_errors`.
`benchmarks/detection_quality.py` is a thin wrapper with the same options.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import ValidationError

from ledgerguard.fraud.engine.fitting import train_model
from ledgerguard.fraud.engine.model import FraudModel
from ledgerguard.fraud.engine.model_card import TrainReport
from ledgerguard.fraud.engine.rules import RULE_IDS
from ledgerguard.fraud.engine.scoring import MODEL_SIGNAL
from ledgerguard.fraud.engine.threshold import ADDED, KEPT
from ledgerguard.fraud.evaluate import evaluate, score_in_memory
from ledgerguard.fraud.synthetic import SyntheticConfig, SyntheticData, config_for_rows, generate
from ledgerguard.load.bench.ceiling import BenchError
from ledgerguard.load.bench.detection_errors import card_amount_bound, errors, label_blind_share
from ledgerguard.settings.fraud import FraudParameters


@dataclass(frozen=True)
class DetectionOptions:
    """The defaults are those every figure in benchmarks/README.md was measured with."""

    seeds: tuple[int, ...] = (101, 102, 103)
    rows: int = 528_000
    days: int = 90
    scored_days: int = 30
    terminals_per_customer: tuple[float, ...] = (0.5, 2.0)
    #: generator parameters (`SyntheticConfig` fields), see `generator_overrides`
    overrides: dict[str, float | int] = field(default_factory=dict)
    terminal_profile: bool = False
    #: engine parameters (`FraudParameters` fields), see `engine_overrides`
    engine: dict[str, object] = field(default_factory=dict)
    #: a folder for each run's misses and false alarms as CSV (`errors`), or none
    dump_errors: Path | None = None


def generator_overrides(items: Iterable[str]) -> dict[str, float | int]:
    """`NAME=VALUE` items naming `SyntheticConfig` fields (a value with a dot is a float)."""
    overrides: dict[str, float | int] = {}
    for item in items:
        name, _, value = item.partition("=")
        if not name or not value or name not in SyntheticConfig.__dataclass_fields__:
            raise BenchError(f"--set {item!r}: expected NAME=VALUE with a SyntheticConfig field")
        try:
            overrides[name] = float(value) if "." in value else int(value)
        except ValueError as exc:
            raise BenchError(f"--set {item!r}: {value!r} is not a number") from exc
    try:  # the configuration's own checks, before any run
        SyntheticConfig(**overrides)  # type: ignore[arg-type]
    except ValueError as exc:
        raise BenchError(f"--set: {exc}") from None
    return overrides


def engine_overrides(items: Iterable[str]) -> dict[str, object]:
    """`NAME=VALUE` items naming `FraudParameters` fields (values validated by the parameters)."""
    engine: dict[str, object] = {}
    for item in items:
        name, _, value = item.partition("=")
        if not name or not value or name not in FraudParameters.model_fields:
            raise BenchError(f"--param {item!r}: expected NAME=VALUE with a FraudParameters field")
        engine[name] = value
    try:  # checked before any run: a bad value is a message, not a traceback minutes later
        FraudParameters(**engine)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"--param {'.'.join(map(str, e['loc']))}={e['input']}: {e['msg']}" for e in exc.errors()
        )
        raise BenchError(problems) from None
    return engine


def run_detection(
    options: DetectionOptions, *, progress: Callable[[str], None]
) -> dict[str, list[dict[str, object]]]:
    """Every (density, seed) configuration, densities outermost; `progress` gets each one's
    overall figures."""
    results = []
    if options.dump_errors is not None:
        options.dump_errors.mkdir(parents=True, exist_ok=True)
    for density in options.terminals_per_customer:
        for seed in options.seeds:
            result = run_seed(
                seed,
                options.rows,
                options.days,
                options.scored_days,
                density,
                options.overrides,
                options.terminal_profile,
                options.engine,
                options.dump_errors / f"errors-seed{seed}-{density}.csv"
                if options.dump_errors
                else None,
            )
            overall = {n: result[n][-1] for n in ("rules", "rules+model")}  # type: ignore[index]
            progress(f"seed {seed} density {density}: {json.dumps(overall)}")
            results.append(result)
    return {"runs": results}


def per_rule(scored: pd.DataFrame) -> dict[str, dict[str, float | int]]:
    """Rows each rule (or the model) fired on among the scored ones, and how many were fraud."""
    ids = scored["rule_ids"].str.split(",")
    fraud = scored["is_fraud"].to_numpy() == 1
    out = {}
    for rule in (*RULE_IDS, MODEL_SIGNAL):
        fired = ids.map(lambda names, rule=rule: rule in names).to_numpy(dtype=bool)
        if fired.any():
            out[rule] = {
                "fired": int(fired.sum()),
                "frauds": int((fired & fraud).sum()),
                "precision": round(float((fired & fraud).sum() / fired.sum()), 4),
            }
    return out


def by_block(
    scored: pd.DataFrame, start: datetime, block_days: int = 10
) -> list[dict[str, object]]:
    """Flagged precision and recall per `block_days` of the scored interval: does the
    threshold chosen before the interval hold on its later days too?"""
    day = (scored["occurred_at"] - pd.Timestamp(start)).dt.days // block_days
    out = []
    for block, part in scored.groupby(day):
        flagged, fraud = part["flagged"].to_numpy(bool), part["is_fraud"].to_numpy() == 1
        hits = int((flagged & fraud).sum())
        out.append(
            {
                "days": f"{int(block) * block_days}-{(int(block) + 1) * block_days - 1}",
                "frauds": int(fraud.sum()),
                "flagged": int(flagged.sum()),
                "precision": round(hits / max(int(flagged.sum()), 1), 4),
                "recall": round(hits / max(int(fraud.sum()), 1), 4),
            }
        )
    return out


def threshold_study(
    scored: pd.DataFrame,
    start: datetime,
    candidates: dict[str, dict[str, object]],
    kept: np.ndarray,
) -> dict[str, dict[str, object]]:
    """Rules + model on the scored interval at the threshold each rule gave (round 8b).

    The rules differ only in the threshold cut from the same validation scores, so one run
    measures all of them: per rule, its validation figures (pooled and per window, from the
    training report) next to the scored month's precision and recall, overall and per week.
    A `<rule>+kept` or `<rule>+added` candidate (rounds 8c and 9, `model_keeps_rule_flags`)
    flags `kept` (the rows of `scored` the rules alone flag) at its threshold too; without a
    suffix the score alone flags, as with `model_keeps_rule_flags=false`; `rule_flags_below`
    counts the rows the rules flag whose score is below its threshold (dropped without a
    suffix) and `frauds_among_them` the frauds among them.
    """
    fraud = scored["is_fraud"].to_numpy() == 1
    score = scored["score"].to_numpy(dtype=float)
    out = {}
    for name, candidate in candidates.items():
        flagged = score >= float(candidate["threshold"])  # type: ignore[arg-type]
        below = kept & ~flagged
        if name.endswith((KEPT, ADDED)):
            flagged = flagged | kept
        hits = int((flagged & fraud).sum())
        weekly = by_block(scored.assign(flagged=flagged), start, block_days=7)
        out[name] = {
            **candidate,
            "month": {
                "flagged": int(flagged.sum()),
                "precision": round(hits / max(int(flagged.sum()), 1), 4),
                "recall": round(hits / max(int(fraud.sum()), 1), 4),
                "week_precision": [block["precision"] for block in weekly],
                "rule_flags_below": int(below.sum()),
                "frauds_among_them": int((below & fraud).sum()),
            },
        }
    return out


@dataclass(frozen=True)
class PreparedSeed:
    """One configuration ready to score: the generator's data, the engine's parameters, the
    scored interval `[scored_from, end)` (the last `scored_days`) and the model trained on
    the days before it."""

    config: SyntheticConfig
    data: SyntheticData
    params: FraudParameters
    scored_from: datetime
    end: datetime
    training: TrainReport
    model: FraudModel

    def score(
        self, model: FraudModel | None, params: FraudParameters | None = None
    ) -> pd.DataFrame:
        """The scored interval's verdicts with `model` (None: the rules alone), as the nightly
        run would store them under `params` (default: the configuration's)."""
        return score_in_memory(
            self.data.transactions,
            self.data.labels,
            start=self.scored_from,
            end=self.end,
            params=self.params if params is None else params,
            model=model,
        )


@contextmanager
def prepare_seed(
    seed: int,
    *,
    rows: int,
    days: int,
    scored_days: int,
    density: float,
    overrides: dict[str, float | int] | None = None,
    profile: bool = False,
    engine: dict[str, object] | None = None,
) -> Iterator[PreparedSeed]:
    """Generate a seed's data and train a model on all but its last `scored_days`, as `ledgerguard
    fraud train` does, in a model store that lasts as long as the context. Shared by `bench
    detection` and the studies in `benchmarks/` (e.g. `storage_bar.py`), so each measures the
    same configuration."""
    config = config_for_rows(
        rows, days=days, seed=seed, terminals_per_customer=density, **(overrides or {})
    )
    data = generate(config)
    start = datetime.combine(
        data.transactions["occurred_at"].min().date(), datetime.min.time(), UTC
    )
    scored_from = start + timedelta(days=days - scored_days)
    early = (data.transactions["occurred_at"] < scored_from).to_numpy()
    with tempfile.TemporaryDirectory() as store:
        # the platform knows its own label delay: the engine's follows the data's, unless an
        # engine parameter says otherwise (e.g. label_delay_days one more: the horizon of the
        # streaming scorer, which scores a payment before its day's labels are all in); labels
        # that come at once are read from the next day on (a payment's own day never is)
        params = FraudParameters(
            **{
                "model_store_dir": Path(store),
                "label_delay_days": max(config.label_delay_days, 1),
                "terminal_profile_features": profile,
            }
            | (engine or {})
        )
        training = train_model(data.transactions[early], data.labels[early], params=params)
        yield PreparedSeed(
            config=config,
            data=data,
            params=params,
            scored_from=scored_from,
            end=start + timedelta(days=days),
            training=training,
            model=FraudModel.from_store(Path(store), training.version),
        )


def run_seed(
    seed: int,
    rows: int,
    days: int,
    scored_days: int,
    density: float,
    overrides: dict[str, float | int],
    profile: bool,
    engine: dict[str, object] | None = None,
    dump: Path | None = None,
) -> dict[str, object]:
    """One configuration's report: its training, the rules' and rules + model's tables, per
    rule, the misses and false alarms of rules + model (`errors`; as CSV in `dump`), per
    10-day block, and how much of the terminal fraud no label could show yet."""
    began = time.monotonic()
    load = os.getloadavg()
    with prepare_seed(
        seed,
        rows=rows,
        days=days,
        scored_days=scored_days,
        density=density,
        overrides=overrides,
        profile=profile,
        engine=engine,
    ) as prepared:
        config, data, model = prepared.config, prepared.data, prepared.model
        report, scored_from = prepared.training, prepared.scored_from
        scored = {
            name: prepared.score(with_model)
            for name, with_model in (("rules", None), ("rules+model", model))
        }
        tables = {name: evaluate(frame) for name, frame in scored.items()}
        times = data.transactions[["external_id", "occurred_at"]].astype({"external_id": str})
        month = scored["rules+model"].merge(times, on="external_id")
        rules_flagged = scored["rules"][["external_id", "flagged"]]
        kept_by_rules = month[["external_id"]].merge(rules_flagged, on="external_id", how="left")
        kept_by_rules = kept_by_rules["flagged"].fillna(False).to_numpy(dtype=bool)
    blind = label_blind_share(data, scored_from, config.label_delay_days)
    return {
        "seed": seed,
        "terminals_per_customer": density,
        "generator_overrides": overrides,
        "engine_overrides": engine or {},
        "terminal_profile_features": profile,
        "load_average_at_start": load,
        "label_blind": blind,
        "card_amount_bound": card_amount_bound(
            data, scored_from, int(blind["terminal_frauds_label_blind"])
        ),
        "transactions": len(data.transactions),
        "fraud_share": round(float(data.labels["is_fraud"].mean()), 4),
        "training": {key: value for key, value in report.to_dict().items() if key != "features"},
        "combiner": model.combiner.to_card() if model.combiner is not None else None,
        **{name: table.round(4).to_dict(orient="records") for name, table in tables.items()},
        "per_rule": {name: per_rule(frame) for name, frame in scored.items()},
        "errors": errors(scored["rules+model"], data, config.label_delay_days, dump),
        "by_block": {
            name: by_block(frame.merge(times, on="external_id"), scored_from)
            for name, frame in scored.items()
        },
        "threshold_study": threshold_study(
            month, scored_from, report.threshold_candidates, kept_by_rules
        ),
        "seconds": round(time.monotonic() - began, 1),
        "load_average_at_end": os.getloadavg(),
    }
