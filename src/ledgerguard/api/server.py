"""Running the API under Gunicorn: in the foreground (`api serve`) or as a managed background
process (`api start/stop/status`, used by the demo), with Prometheus multiprocess mode set up.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import httpx

from ledgerguard.errors import LedgerGuardError
from ledgerguard.files import private_dir
from ledgerguard.processes import (
    StartFailed,
    pid_from_file,
    port_answers,
    spawn_detached,
    stop_group,
    wait_ready,
)
from ledgerguard.settings import Settings, without_secrets


class ApiServerError(LedgerGuardError):
    """The API server could not be started or stopped."""


#: The only secrets the API's processes get: its own account on the primary and the read-only
#: account on the replica (least secrets: no root, replication, migration or monitoring password).
API_SECRETS = ("api_db_password", "replica_password")


def _paths(settings: Settings) -> tuple[Path, Path, Path]:
    base = settings.state_dir / "api"
    return base / "gunicorn.pid", base / "api.log", base / "prometheus-multiproc"


def gunicorn_command(settings: Settings) -> tuple[list[str], dict[str, str]]:
    """The argv and environment that run the API with Prometheus multiprocess mode.

    Only computes them: the samples folder is emptied by `_fresh_metrics_dir` just before a
    server starts, never while one may be running (its workers' files would vanish).
    """
    pid_file, _, multiproc = _paths(settings)
    env = without_secrets(os.environ) | settings.to_env(secrets=API_SECRETS)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(multiproc)
    gunicorn = Path(sys.executable).with_name("gunicorn")
    argv = [
        str(gunicorn),
        "-c",
        "python:ledgerguard.api.gunicorn_conf",
        "--pid",
        str(pid_file),
        "ledgerguard.api.main:create_app()",
    ]
    return argv, env


def _fresh_metrics_dir(settings: Settings) -> None:
    """An empty Prometheus multiprocess folder (stale samples of dead workers removed)."""
    _, _, multiproc = _paths(settings)
    private_dir(settings.state_dir)
    shutil.rmtree(multiproc, ignore_errors=True)
    multiproc.mkdir(parents=True, exist_ok=True)


def serve_foreground(settings: Settings) -> None:
    """Replace this process with Gunicorn (Ctrl-C stops it)."""
    _fresh_metrics_dir(settings)
    argv, env = gunicorn_command(settings)
    os.execve(argv[0], argv, env)


def running_pid(settings: Settings) -> int | None:
    """Gunicorn's master (it writes its own pid file) if it is alive."""
    pid_file, _, _ = _paths(settings)
    return pid_from_file(pid_file, runs=lambda cmdline: b"gunicorn" in cmdline)


def start_background(settings: Settings, *, timeout: float = 30.0) -> bool:
    """Start Gunicorn detached; True if started, False if already running. Waits for /health."""
    if running_pid(settings) is not None:
        return False
    if port_answers(settings.api_host, settings.api_port):
        raise ApiServerError(
            f"port {settings.api_port} is already in use: stop that process or set "
            "LEDGERGUARD_API_PORT"
        )
    _fresh_metrics_dir(settings)
    argv, env = gunicorn_command(settings)
    _, log_path, _ = _paths(settings)
    process = spawn_detached(argv, log_file=log_path, env=env)
    url = f"http://{settings.api_host}:{settings.api_port}/health"
    try:
        wait_ready(
            process,
            answers=lambda: _answers(url),
            timeout=timeout,
            name=f"the API ({url})",
            log_file=log_path,
            poll=0.2,
        )
    except StartFailed as exc:
        raise ApiServerError(str(exc)) from None
    return True


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def stop_background(settings: Settings, *, timeout: float = 15.0) -> bool:
    """Stop the background server (SIGTERM: graceful), then SIGKILL if it lingers."""
    pid = running_pid(settings)
    if pid is None:
        return False
    stop_group(pid, timeout=timeout)
    return True
