"""`ledgerguard scorer` (the streaming scorer, foreground) and `ledgerguard alerts redeliver`."""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Annotated

import typer

from ledgerguard.cli.common import abort, print_json, say, settings_of
from ledgerguard.errors import LedgerGuardError

alerts_app = typer.Typer(help="Fraud alerts sent to the webhook.", no_args_is_help=True)


def scorer(
    ctx: typer.Context,
    partition: Annotated[
        str,
        typer.Option(
            help="K/N: keep and score the users with user_id % N == K (run N scorers).",
        ),
    ] = "0/1",
    rebuild: Annotated[
        bool,
        typer.Option(
            "--rebuild",
            help="The checkpoint's binlog was purged: score what it no longer covers from the "
            "replica's tables, then stream from the replica's current position.",
        ),
    ] = False,
) -> None:
    """Score every committed transaction from the replica's binlog (runs until stopped).

    Metrics on LEDGERGUARD_SCORER_METRICS_PORT (+ K), batches of LEDGERGUARD_SCORER_BATCH_MS,
    alerts to LEDGERGUARD_ALERT_WEBHOOK_URL when set. `ledgerguard up` runs it in the
    background.
    """
    from ledgerguard.realtime.partition import Partition
    from ledgerguard.realtime.scorer import Scorer

    settings = settings_of(ctx)
    try:
        part = Partition.parse(partition)
    except ValueError as exc:
        abort(str(exc), code=2)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    os.nice(settings.scorer_nice)  # the write path first (`LEDGERGUARD_SCORER_NICE`)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    worker = Scorer(settings, partition=part)
    try:
        worker.metrics.serve(settings.scorer_metrics_port + part.index, settings.bind_address)
    except OSError as exc:
        abort(
            f"cannot listen on port {settings.scorer_metrics_port + part.index} for metrics "
            f"({exc}): set LEDGERGUARD_SCORER_METRICS_PORT"
        )
    try:
        worker.run(stop, rebuild=rebuild)
    except LedgerGuardError as exc:
        abort(str(exc))


@alerts_app.command()
def redeliver(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
) -> None:
    """Send every dead-letter alert again (same delivery id), now."""
    from ledgerguard.db.engines import writer_engine
    from ledgerguard.realtime.alerts import redeliver as send_again

    settings = settings_of(ctx)
    if settings.alert_webhook_url is None:
        abort("no LEDGERGUARD_ALERT_WEBHOOK_URL configured: nowhere to deliver alerts")
    engine = writer_engine(settings)
    try:
        requeued, counts = send_again(settings, engine)
    finally:
        engine.dispose()
    result = {"requeued": requeued, "delivered": counts.delivered, "failed": counts.failed}
    if json_output:
        print_json(result)
    else:
        say(
            f"{requeued} dead letters queued again: {counts.delivered} delivered, "
            f"{counts.failed} failed (dead again once their retries run out)"
        )
