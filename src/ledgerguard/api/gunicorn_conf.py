"""Gunicorn settings for `ledgerguard api serve` (read with `-c python:ledgerguard.api.gunicorn_conf`).

Bind address, port and worker count come from `LEDGERGUARD_API_*` (via `Settings`); the server
runs Uvicorn workers (uvloop, httptools; one write per response, see `ledgerguard.api.worker`).
`child_exit` tells prometheus-client that a worker is gone, so its live gauges stop counting.
"""

from __future__ import annotations

from typing import Any

from ledgerguard.settings import Settings

_settings = Settings()

bind = f"{_settings.api_host}:{_settings.api_port}"
workers = _settings.workers
worker_class = "ledgerguard.api.worker.ApiWorker"
keepalive = 75
timeout = 30
graceful_timeout = 10
backlog = 4096
accesslog = None


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
