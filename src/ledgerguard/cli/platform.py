"""`ledgerguard up` / `ledgerguard down`: the whole local platform."""

from __future__ import annotations

from typing import Annotated

import typer

from ledgerguard.cli.common import abort, say, settings_of
from ledgerguard.errors import LedgerGuardError


def up(
    ctx: typer.Context,
    with_monitoring: Annotated[
        bool, typer.Option("--with-monitoring", help="Also Prometheus + mysqld-exporters.")
    ] = False,
    with_airflow: Annotated[
        bool, typer.Option("--with-airflow", help="Also Airflow (standalone) with the DAGs.")
    ] = False,
) -> None:
    """Start the cluster and the API (and optionally monitoring and Airflow); idempotent."""
    from ledgerguard.platform import platform_up

    try:
        platform_up(
            settings_of(ctx),
            with_monitoring=with_monitoring,
            with_airflow=with_airflow,
            progress=say,
        )
    except LedgerGuardError as exc:
        abort(str(exc))


def down(ctx: typer.Context) -> None:
    """Stop Airflow, monitoring, the API and the cluster (data is kept)."""
    from ledgerguard.platform import platform_down

    try:
        platform_down(settings_of(ctx), progress=say)
    except LedgerGuardError as exc:
        abort(str(exc))
