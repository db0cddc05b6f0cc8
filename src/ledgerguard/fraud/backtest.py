"""Backtests: score a past interval with a draft configuration, side by side with the current one.

`backtest` reads [start - lookback, end) from the replica exactly as the nightly analysis does
(same pages, same terminal history, same engine), scores it twice — with the current parameters
and promoted model, and with a draft parameter set and/or model version — and judges both
against the fraud labels known today. **It writes nothing**: no verdict, no report, no model.

Both are judged by `evaluate.configuration_metrics`, the judge the promotion gate of
`ledgerguard fraud train` uses too: precision, recall and average precision overall and per
rule, where a transaction the configuration would not store counts as score 0.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ledgerguard.fraud.engine.fx import fill_missing_usd
from ledgerguard.fraud.engine.scoring import score_frame
from ledgerguard.fraud.engine.terminal_history import TerminalHistory
from ledgerguard.fraud.errors import FraudAnalysisError
from ledgerguard.fraud.evaluate import configuration_metrics
from ledgerguard.fraud.parameter_sets import apply_overrides
from ledgerguard.fraud.reader import ReplicaReader, wait_for_replica
from ledgerguard.fraud.terminal_profile import replica_terminal_history
from ledgerguard.money import FxRates
from ledgerguard.settings import Settings
from ledgerguard.settings.fraud import FraudParameters
from ledgerguard.utc import to_us, utc_midnight

if TYPE_CHECKING:
    from ledgerguard.fraud.engine.model import FraudModel

#: `--model none`: the draft runs the rules alone.
NO_MODEL = "none"


def params_from_file(path: Path, base: FraudParameters) -> FraudParameters:
    """`base` with the parameters of a JSON file (`{"anomaly_ratio": 4, ...}`) applied.

    An unknown name is an error naming it (a typo must not silently test the current value).
    """
    try:
        overrides = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise FraudAnalysisError(f"{path}: not a JSON object of parameters: {exc}") from exc
    if not isinstance(overrides, dict):
        raise FraudAnalysisError(f"{path}: expected a JSON object of parameters")
    return apply_overrides(base, overrides, where=str(path))


@dataclass(frozen=True)
class Configuration:
    name: str
    params: FraudParameters
    model: FraudModel | None


def choose_model(params: FraudParameters, version: str | None) -> FraudModel | None:
    """The model a configuration names: a store version, "none", or None for the current one."""
    from ledgerguard.fraud.pipeline import model_of

    if version is None:
        return model_of(params)
    if version == NO_MODEL:
        return None
    from ledgerguard.fraud.engine.model import FraudModel, TrainingError

    try:
        return FraudModel.from_store(params.model_store_dir, version)
    except (TrainingError, ValueError) as exc:
        raise FraudAnalysisError(str(exc)) from exc


def backtest(
    settings: Settings,
    *,
    start: datetime,
    end: datetime,
    params: FraudParameters | None = None,
    model_version: str | None = None,
) -> dict[str, Any]:
    """Figures of the current and the draft configuration on [start, end); writes nothing.

    The draft is `params` (default: the current ones) with `model_version` (default: the
    promoted version; `"none"`: the rules alone).
    """
    if start.tzinfo is None or end.tzinfo is None or start >= end:
        raise FraudAnalysisError("backtest needs timezone-aware start < end")
    current = Configuration("current", settings.fraud, choose_model(settings.fraud, None))
    draft_params = params or settings.fraud
    draft = Configuration("draft", draft_params, choose_model(draft_params, model_version))
    configurations = (current, draft)
    lookback = max(c.params.lookback_days for c in configurations)
    since = utc_midnight(start) - timedelta(
        days=max(c.params.terminal_read_days for c in configurations)
    )
    until = utc_midnight(end) + timedelta(days=1)
    fx = FxRates()
    stored: dict[str, list[pd.DataFrame]] = {c.name: [] for c in configurations}
    analysed: list[np.ndarray] = []
    start_us, end_us = to_us(start), to_us(end)
    wait_for_replica(settings)
    with ReplicaReader(settings) as replica:
        # one history per distinct parameter set (the terminal profile depends on them)
        histories: dict[str, TerminalHistory] = {}
        for c in configurations:
            twin = next((o.name for o in configurations if o.params == c.params), c.name)
            histories[c.name] = histories.get(twin) or replica_terminal_history(
                replica, c.params, since=since, until=until, start=start, end=end, fx=fx
            )
        fraud_ids = replica.fraud_ids(since=start, until=end, known_by=datetime.now(UTC))
        for frame in replica.pages(
            since=start - timedelta(days=lookback), until=end, page_rows=settings.fraud.page_rows
        ):
            frame = fill_missing_usd(frame, fx)
            ts = frame["ts_us"].to_numpy()
            analysed.append(frame["transaction_id"].to_numpy()[(ts >= start_us) & (ts < end_us)])
            for configuration in configurations:
                rows = score_frame(
                    frame,
                    histories[configuration.name],
                    configuration.params,
                    start=start,
                    end=end,
                    model=configuration.model,
                ).rows
                stored[configuration.name].append(
                    rows[["transaction_id", "score", "flagged", "rule_ids"]]
                )
    ids = np.concatenate(analysed) if analysed else np.zeros(0, dtype=np.int64)
    empty = pd.DataFrame({"transaction_id": [], "score": [], "flagged": [], "rule_ids": []})
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        **{
            c.name: {
                "model_version": c.model.version if c.model is not None else None,
                **configuration_metrics(
                    ids, pd.concat(stored[c.name] or [empty], ignore_index=True), fraud_ids
                ),
            }
            for c in configurations
        },
    }
