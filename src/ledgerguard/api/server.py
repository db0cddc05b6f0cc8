"""Running the API under Gunicorn: in the foreground (`api serve`) or as a managed background
process (`api start/stop/status`, used by the demo), with Prometheus multiprocess mode set up.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ledgerguard.cluster.process import pid_alive, port_answers, tail
from ledgerguard.errors import LedgerGuardError
from ledgerguard.settings import Settings


class ApiServerError(LedgerGuardError):
    """The API server could not be started or stopped."""


def _paths(settings: Settings) -> tuple[Path, Path, Path]:
    base = settings.state_dir / "api"
    return base / "gunicorn.pid", base / "api.log", base / "prometheus-multiproc"


def gunicorn_command(settings: Settings) -> tuple[list[str], dict[str, str]]:
    """The argv and environment that run the API with Prometheus multiprocess mode."""
    pid_file, _, multiproc = _paths(settings)
    shutil.rmtree(multiproc, ignore_errors=True)  # stale samples of dead workers
    multiproc.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ) | settings.to_env()
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


def serve_foreground(settings: Settings) -> None:
    """Replace this process with Gunicorn (Ctrl-C stops it)."""
    argv, env = gunicorn_command(settings)
    os.execve(argv[0], argv, env)


def running_pid(settings: Settings) -> int | None:
    pid_file, _, _ = _paths(settings)
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def start_background(settings: Settings, *, timeout: float = 30.0) -> bool:
    """Start Gunicorn detached; True if started, False if already running. Waits for /health."""
    if running_pid(settings) is not None:
        return False
    if port_answers(settings.api_host, settings.api_port):
        raise ApiServerError(
            f"port {settings.api_port} is already in use: stop that process or set "
            "LEDGERGUARD_API_PORT"
        )
    argv, env = gunicorn_command(settings)
    _, log_path, _ = _paths(settings)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    url = f"http://{settings.api_host}:{settings.api_port}/health"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ApiServerError(
                f"the API exited while starting; end of {log_path}:\n{tail(log_path)}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return True
        time.sleep(0.2)
    stop_background(settings)
    raise ApiServerError(f"the API did not answer {url} within {timeout:.0f} s; see {log_path}")


def stop_background(settings: Settings, *, timeout: float = 15.0) -> bool:
    """Stop the background server (SIGTERM: graceful), then SIGKILL if it lingers."""
    pid = running_pid(settings)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.1)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(os.getpgid(pid), signal.SIGKILL)
    return True
