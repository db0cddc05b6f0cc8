"""`ledgerguard demo`: the platform end to end on the local default (what `make demo` runs)."""

from __future__ import annotations

import typer

from ledgerguard.cli.cluster import render_status
from ledgerguard.cli.common import abort, say, settings_of
from ledgerguard.cluster.local import LocalCluster
from ledgerguard.demo import run_demo
from ledgerguard.errors import LedgerGuardError


def demo(ctx: typer.Context) -> None:
    """Start the cluster, write a transaction on the primary, read it from the replica, show status."""
    settings = settings_of(ctx)
    try:
        run_demo(settings, say=say)
    except LedgerGuardError as exc:
        abort(str(exc))
    render_status(LocalCluster(settings).status())
