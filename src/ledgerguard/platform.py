"""The whole local platform at once: `ledgerguard up [--with-monitoring] [--with-airflow]` and
`ledgerguard down`.

Start order follows the dependencies: the cluster first (everything reads or writes it), then
the API, then the streaming scorer (it follows the replica's binlog) and the binlog archiver (it
streams the primary), then the monitoring (it scrapes them), then Airflow (its DAGs need the
replica). Stop order is the reverse. Each step is idempotent, so `up` on a running platform only
starts what is missing.
"""

from __future__ import annotations

from collections.abc import Callable

from ledgerguard.settings import Settings

Progress = Callable[[str], None]


def platform_up(
    settings: Settings, *, with_monitoring: bool, with_airflow: bool, progress: Progress
) -> None:
    from ledgerguard.api.server import start_background
    from ledgerguard.cluster.local import LocalCluster

    LocalCluster(settings).up(progress=progress)
    started = start_background(settings)
    progress(
        f"API {'started' if started else 'already running'} at "
        f"http://{settings.api_host}:{settings.api_port} (Swagger UI: /docs)"
    )
    from ledgerguard.realtime.process import start_scorer

    started = start_scorer(settings)
    progress(
        f"scorer {'started' if started else 'already running'} "
        f"(metrics http://127.0.0.1:{settings.scorer_metrics_port}/metrics)"
    )
    from ledgerguard.backup.archiver import start_archiver

    progress(
        "binlog archiver "
        + ("started" if start_archiver(settings) else "already running")
        + f" (archive in {settings.backups_root / 'binlogs'})"
    )
    if with_monitoring:
        from ledgerguard.monitoring.local import LocalMonitoring

        LocalMonitoring(settings).up(progress=progress)
        progress(f"Prometheus at http://127.0.0.1:{settings.prometheus_port}")
    if with_airflow:
        from ledgerguard.orchestration.process import start_airflow

        started = start_airflow(settings)
        progress(
            f"Airflow {'started' if started else 'already running'} at "
            f"http://127.0.0.1:{settings.airflow_port} ({settings.airflow_admin_user} / "
            "AIRFLOW_ADMIN_PASSWORD)"
        )


def platform_down(settings: Settings, *, progress: Progress) -> None:
    """Stop whatever runs, in reverse order (data is kept)."""
    from ledgerguard.api.server import stop_background
    from ledgerguard.backup.archiver import stop_archiver
    from ledgerguard.cluster.local import LocalCluster
    from ledgerguard.monitoring.local import LocalMonitoring
    from ledgerguard.orchestration.process import stop_airflow
    from ledgerguard.realtime.process import started_partitions, stop_scorer

    if stop_airflow(settings):
        progress("stopped Airflow")
    LocalMonitoring(settings).down(progress=progress)
    if stop_archiver(settings):
        progress("stopped the binlog archiver")
    for partition in started_partitions(settings):
        if stop_scorer(settings, partition):
            progress(f"stopped the scorer {partition.name}")
    if stop_background(settings):
        progress("stopped the API")
    LocalCluster(settings).down(progress=progress)
