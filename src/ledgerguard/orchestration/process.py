"""`airflow standalone` as a managed background process: start, stop, status.

Same rules as the database servers and the API (`cluster.process`, `api.server`):

* one process group per Airflow (`start_new_session`), so stopping it signals its api-server,
  scheduler, dag-processor, triggerer and task processes, and nothing else;
* refuse to start when the port already answers and the process is not ours;
* ready = our process is alive AND `/api/v2/monitor/health` reports the metadata DB, scheduler,
  dag-processor and triggerer healthy, within a timeout; a process that exits raises at once with
  the end of its log;
* stop = SIGINT to the group (Ctrl-C: each component shuts down cleanly), then SIGTERM, then
  SIGKILL, each bounded in time (see `stop_airflow`).

Why `airflow standalone` and not four services: it is the documented one-command local Airflow,
it migrates the metadata DB itself on start, and this module already gives it a pid file, a log,
readiness and a bounded stop, which is what four separate services would need too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ledgerguard.errors import LedgerGuardError
from ledgerguard.orchestration.config import (
    airflow_env,
    airflow_paths,
    base_url,
    client_host,
    venv_bin,
    write_passwords_file,
)
from ledgerguard.processes import (
    StartFailed,
    command_line,
    pid_alive,
    pid_from_file,
    port_answers,
    signal_group,
    spawn_detached,
    wait_ready,
)
from ledgerguard.settings import Settings, without_secrets

#: Components `/api/v2/monitor/health` reports, all of which must be healthy to run a DAG.
COMPONENTS = ("metadatabase", "scheduler", "dag_processor", "triggerer")


class AirflowError(LedgerGuardError):
    """The local Airflow could not be started, stopped or reached."""


@dataclass
class AirflowStatus:
    """What `ledgerguard airflow status` shows."""

    running: bool
    url: str
    home: str
    log: str
    pid: int | None = None
    components: dict[str, str] = field(default_factory=dict)
    error: str = ""

    @property
    def healthy(self) -> bool:
        return self.running and all(self.components.get(name) == "healthy" for name in COMPONENTS)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"healthy": self.healthy}


def airflow_binary() -> str:
    """`airflow` next to this interpreter, or an error naming the install command."""
    binary = venv_bin() / "airflow"
    if not os.access(binary, os.X_OK):
        raise AirflowError(
            f"{binary} not found: install Airflow into this environment with "
            "`.venv/bin/pip install -e '.[airflow]'` (or `make setup EXTRAS=dev,airflow`)"
        )
    return str(binary)


def running_pid(settings: Settings) -> int | None:
    """The pid of our standalone process if it is alive (and still runs Airflow)."""
    return pid_from_file(airflow_paths(settings).pid_file, runs=_is_airflow)


def _is_airflow(cmdline: bytes) -> bool:
    """Whether a command line runs an Airflow program: pid files outlive processes, pids are
    reused."""
    return b"airflow" in cmdline


def component_health(settings: Settings, *, timeout: float = 2.0) -> dict[str, str]:
    """Each component's status from the api-server (empty when it does not answer)."""
    try:
        response = httpx.get(f"{base_url(settings)}/api/v2/monitor/health", timeout=timeout)
        response.raise_for_status()
        data = response.json()
    except (httpx.HTTPError, ValueError):
        return {}
    return {name: str((data.get(name) or {}).get("status")) for name in COMPONENTS}


def _default_sigint() -> None:
    """Give standalone a default SIGINT even if we were started with it ignored.

    A shell starts background jobs (`cmd &`, `make demo &`) with SIGINT ignored and children
    inherit that; Python then never raises KeyboardInterrupt, which is standalone's only way
    to stop its components cleanly.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_airflow(settings: Settings, *, timeout: float = 180.0) -> bool:
    """Start `airflow standalone` detached; True if started, False if it was already running.

    Waits until every component is healthy. Raises `AirflowError` when the port is taken, the
    process exits, or it is not healthy within `timeout` seconds (it is then stopped).
    """
    if running_pid(settings) is not None:
        return False
    host = client_host(settings)
    if port_answers(host, settings.airflow_port):
        raise AirflowError(
            f"port {settings.airflow_port} is already in use: stop that process or set "
            "LEDGERGUARD_AIRFLOW_PORT"
        )
    binary = airflow_binary()
    paths = airflow_paths(settings)
    paths.home.mkdir(parents=True, exist_ok=True)
    write_passwords_file(settings, paths.passwords_file)
    env = without_secrets(os.environ) | airflow_env(settings)
    process = spawn_detached(
        [binary, "standalone"],
        log_file=paths.log_file,
        env=env,
        cwd=paths.home,
        preexec_fn=_default_sigint,
    )
    paths.pid_file.write_text(f"{process.pid}\n")

    def healthy() -> bool:
        health = component_health(settings)
        return bool(health) and all(health[name] == "healthy" for name in COMPONENTS)

    try:
        wait_ready(
            process,
            answers=healthy,
            timeout=timeout,
            name="airflow standalone (every component healthy)",
            log_file=paths.log_file,
            poll=0.5,
            stop=lambda: stop_airflow(settings),
        )
    except StartFailed as exc:
        raise AirflowError(str(exc)) from exc
    return True


def _group_members(pgid: int) -> list[tuple[int, bytes]]:
    """(pid, command line) of each living (non-zombie) Airflow process of group `pgid`.

    Zombies are ignored: orphans of a stopped standalone are reaped by whatever runs as PID 1,
    which in a container may never happen; they hold no resources. Processes that do not run
    Airflow are ignored too, so a reused pid never makes us signal someone else's group.
    `pid_alive` first reaps the leader if it is our own child (start and stop in one process).
    """
    pid_alive(pgid)
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state, _ppid, group = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:3]
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(group) == pgid and state != "Z" and b"airflow" in cmdline:
            members.append((int(entry.name), cmdline))
    return members


def _wait_group_gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _group_members(pgid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
    return True


def stop_airflow(settings: Settings, *, grace: float = 15.0) -> bool:
    """Stop our standalone and every process it started; True if it was running.

    SIGINT to the group first (what Ctrl-C does: each component shuts down cleanly, ~6 s on 2
    busy cores). Once a task has run, the scheduler of Airflow 3.3 waits at exit for its idle
    LocalExecutor workers, which ignore SIGINT and SIGTERM; idle workers have nothing to lose, so
    they get SIGKILL. Whatever is left after `grace` seconds gets SIGTERM, then SIGKILL.
    """
    paths = airflow_paths(settings)
    try:
        pid = int(paths.pid_file.read_text().strip())
    except (OSError, ValueError):
        return False
    was_running = pid_alive(pid) and _is_airflow(command_line(pid))
    if was_running:
        signal_group(pid, signal.SIGINT)
        if not _wait_group_gone(pid, 3.0):
            for member, cmdline in _group_members(pid):
                if b"LocalExecutor: <idle>" in cmdline:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(member, signal.SIGKILL)
            _wait_group_gone(pid, grace)
    # leftovers: components of a crashed standalone, or processes that ignore SIGINT
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 10.0)):
        if not _group_members(pid):
            break
        signal_group(pid, sig)
        _wait_group_gone(pid, wait)
    paths.pid_file.unlink(missing_ok=True)
    return was_running


def airflow_status(settings: Settings) -> AirflowStatus:
    paths = airflow_paths(settings)
    pid = running_pid(settings)
    status = AirflowStatus(
        running=pid is not None,
        url=base_url(settings),
        home=str(paths.home),
        log=str(paths.log_file),
        pid=pid,
    )
    if pid is None:
        status.error = "not running"
        return status
    status.components = component_health(settings)
    if not status.components:
        status.error = f"the api-server does not answer on {status.url}"
    return status
