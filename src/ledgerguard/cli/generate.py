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
    terminals_per_customer: Annotated[
        float, typer.Option(min=0.01, help="Terminals per customer (the Handbook's own: 2).")
    ] = 0.5,
    label_delay_days: Annotated[
        int, typer.Option(min=0, help="Days between a payment and its label (labelled_at).")
    ] = 7,
    early_label_share: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of the frauds labelled sooner, at a uniform moment of the delay (a "
            "cardholder's dispute, an analyst's decision; 0: all the full delay late).",
        ),
    ] = 0.0,
    terminal_compromise_days: Annotated[
        int, typer.Option(min=1, help="How long a compromised terminal stays compromised.")
    ] = 28,
    terminal_compromise_days_max: Annotated[
        int,
        typer.Option(
            min=0,
            help="Draw each compromise's length uniformly from [--terminal-compromise-days, "
            "this] (0: every compromise lasts --terminal-compromise-days, as in the Handbook).",
        ),
    ] = 0,
    card_compromise_days: Annotated[
        int, typer.Option(min=1, help="How long a compromised card is misused.")
    ] = 14,
    skimmed_card_share: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of the cards paying at a compromised terminal that are misused elsewhere "
            "afterwards (0: the Handbook's scenario, where the compromise leaves no trace).",
        ),
    ] = 0.25,
    card_misuse_factor: Annotated[
        tuple[float, float],
        typer.Option(
            min=1.0,
            help="A misused card's payment costs a factor drawn from [MIN, MAX] times its own "
            "amount (5 5: the Handbook's fixed x5).",
        ),
    ] = (4.0, 10.0),
    fraud_scale: Annotated[
        float, typer.Option(min=0.0, help="Multiplies the rate of every fraud pattern.")
    ] = 1.0,
) -> None:
    """Write a synthetic labelled data set: `<name>_transactions.csv`, `<name>_labels.csv` (with
    `labelled_at`) and `<name>_events.csv` (each pattern instance with its start and end)."""
    from ledgerguard.fraud.synthetic import (
        RATE_FIELDS,
        SyntheticConfig,
        config_for_rows,
    )
    from ledgerguard.fraud.synthetic import (
        generate as generate_data,
    )
    from ledgerguard.fraud.synthetic_files import write_dataset

    if card_misuse_factor[0] > card_misuse_factor[1]:
        raise typer.BadParameter(
            f"MIN {card_misuse_factor[0]} is above MAX {card_misuse_factor[1]}",
            param_hint="--card-misuse-factor",
        )
    if 0 < terminal_compromise_days_max < terminal_compromise_days:
        raise typer.BadParameter(
            f"{terminal_compromise_days_max} is below --terminal-compromise-days "
            f"{terminal_compromise_days} (0: no range)",
            param_hint="--terminal-compromise-days-max",
        )
    base = SyntheticConfig()
    config = config_for_rows(
        rows,
        terminals_per_customer=terminals_per_customer,
        days=days,
        start=start.date(),
        seed=seed,
        label_delay_days=label_delay_days,
        early_label_share=early_label_share,
        terminal_compromise_days=terminal_compromise_days,
        terminal_compromise_days_max=terminal_compromise_days_max,
        card_compromise_days=card_compromise_days,
        skimmed_card_share=skimmed_card_share,
        card_misuse_factor_min=card_misuse_factor[0],
        card_misuse_factor_max=card_misuse_factor[1],
        **{name: getattr(base, name) * fraud_scale for name in RATE_FIELDS},
    )
    data = generate_data(config)
    tx_path, labels_path = write_dataset(data, out, name=name)
    say(f"{len(data.transactions)} transactions → {tx_path}")
    say(f"{int(data.labels['is_fraud'].astype(int).sum())} fraud labels → {labels_path}")
