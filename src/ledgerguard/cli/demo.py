"""`ledgerguard demo`: the platform end to end on the local default (what `make demo` runs)."""

from __future__ import annotations

from typing import Annotated

import typer

from ledgerguard.cli.cluster import render_status
from ledgerguard.cli.common import abort, say, settings_of
from ledgerguard.cluster.local import LocalCluster
from ledgerguard.demo import run_demo
from ledgerguard.errors import LedgerGuardError


def demo(
    ctx: typer.Context,
    monitoring: Annotated[
        bool, typer.Option(help="Also start Prometheus and the exporters.")
    ] = True,
    airflow: Annotated[
        bool, typer.Option(help="Also start Airflow and run 02_fraud_analysis_etl for today.")
    ] = True,
) -> None:
    """The original design's scenario end to end (what `make demo` runs).

    Cluster, API, the 15,000 USD example read back from the replica, monitoring, and Airflow's
    fraud DAG flagging it in the report.
    """
    settings = settings_of(ctx)
    try:
        run_demo(settings, say=say, with_monitoring=monitoring, with_airflow=airflow)
    except LedgerGuardError as exc:
        abort(str(exc))
    render_status(LocalCluster(settings).status())
