"""Training from the replica: the platform retrains its own model (`04_model_training`).

The weekly DAG and `ledgerguard fraud train` without files call `train_from_replica`: it reads
the `model_training_days` before `until` from the replica (the same pages as the nightly
analysis), with the fraud labels known by `until`, and hands them to
`engine.fitting.train_on_frame` — the same training, time-split validation, threshold choice and
promotion gate as for CSV files.

Labels arrive `label_delay_days` late, so the last days before `until` are left out: their
frauds are not known yet, and training on them would teach the model that fresh fraud is
legitimate.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from ledgerguard.fraud.engine.fitting import train_on_frame
from ledgerguard.fraud.engine.fx import fill_missing_usd
from ledgerguard.fraud.engine.model import TrainingError
from ledgerguard.fraud.engine.model_card import TrainReport
from ledgerguard.fraud.reader import Progress, ReplicaReader, wait_for_replica
from ledgerguard.money import FxRates
from ledgerguard.settings import Settings
from ledgerguard.utc import utc_midnight


def train_from_replica(
    settings: Settings,
    *,
    until: datetime,
    days: int | None = None,
    test_days: int = 7,
    store: Path | None = None,
    promote: bool = True,
    progress: Progress | None = None,
) -> TrainReport:
    """Train a model version on the replica's labelled transactions before `until`.

    Raises `TrainingError` when the interval holds no transaction or no fraud on either side
    of the validation split.
    """
    if until.tzinfo is None:
        raise TrainingError("until must be timezone-aware (UTC)")
    params = settings.fraud
    days = days or params.model_training_days
    labelled_until = utc_midnight(until) - timedelta(days=params.label_delay_days)
    since = labelled_until - timedelta(days=days)
    fx = FxRates()
    wait_for_replica(settings)
    with ReplicaReader(settings) as replica:
        pages = [
            fill_missing_usd(frame, fx)
            for frame in replica.pages(
                since=since, until=labelled_until, page_rows=params.page_rows, progress=progress
            )
        ]
        fraud_ids, labelled = replica.fraud_labels(
            since=since, until=labelled_until, known_by=until
        )
    if not pages:
        raise TrainingError(
            f"no transactions on the replica in [{since.isoformat()}, {labelled_until.isoformat()})"
        )
    frame = pd.concat(pages, ignore_index=True)
    del pages
    return train_on_frame(
        frame,
        fraud_ids,
        labelled_days=labelled,
        store=store or params.model_store_dir,
        params=params,
        test_days=test_days,
        promote=promote,
    )
