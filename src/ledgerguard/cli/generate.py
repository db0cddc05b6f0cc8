"""`ledgerguard generate`: a synthetic labelled data set for the fraud engine (no database)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from ledgerguard.cli.common import say


def generate(
    rows: Annotated[int, typer.Option(min=100, help="About this many transactions.")] = 100_000,
    days: Annotated[int, typer.Option(min=1, help="Days of history.")] = 60,
    start: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="First day.")] = datetime(
        2025, 1, 1
    ),
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 0,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("data"),
    name: Annotated[str, typer.Option(help="File name prefix.")] = "synthetic",
) -> None:
    """Write a synthetic labelled data set: `<name>_transactions.csv` + `<name>_labels.csv`."""
    from ledgerguard.fraud.synthetic import (
        config_for_rows,
        write_dataset,
    )
    from ledgerguard.fraud.synthetic import (
        generate as generate_data,
    )

    config = config_for_rows(rows, days=days, start=start.date(), seed=seed)
    data = generate_data(config)
    tx_path, labels_path = write_dataset(data, out, name=name)
    say(f"{len(data.transactions)} transactions → {tx_path}")
    say(f"{int(data.labels['is_fraud'].astype(int).sum())} fraud labels → {labels_path}")
