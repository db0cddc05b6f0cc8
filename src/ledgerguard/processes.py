"""Running our own background programs: the one home of pid files, process groups and stops.

Every long-running program the platform starts (the two `mariadbd`, Prometheus and the
exporters, Gunicorn, `airflow standalone`) follows the same rules (after pytest-mysql and
mirakuru):

* it runs in its own session, so its process group id is its pid and a stop signals nothing
  else (`spawn_detached`, `signal_group`);
* its output is appended to a log file, whose tail goes into every start error (`tail`);
* a pid file is trusted only while that pid is alive (a zombie counts as dead) and, where a
  program name is given, still runs that program: pids are reused (`pid_from_file`);
* we refuse to start when the port already answers and the process is not ours
  (`port_answers`); ready means still alive *and* answering, within a timeout
  (`wait_ready`); a stop is bounded in time and ends with SIGKILL (`stop_group`).

What differs per program (how to ask it to stop cleanly, what "answering" means) stays with
its module: `cluster.process`, `monitoring.process`, `api.server`, `orchestration.process`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

#: Where Debian puts programs; `/usr/sbin` (mariadbd, ...) is not on a normal user's PATH.
SEARCH_DIRS = ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin")


def find_program(
    name_or_path: str,
    *,
    packages: Mapping[str, str],
    error: type[Exception],
    default_package: str | None = None,
) -> str:
    """Absolute path of a program we run, or `error` naming the Debian package to install.

    A path is taken as it is (if executable); a bare name is looked up on PATH, then in
    `SEARCH_DIRS`. `packages` maps program names to the package shipping them (the caller's
    error type keeps each layer's exceptions its own); an unknown name suggests
    `default_package`, else the name itself.
    """
    if os.sep in name_or_path:
        if os.access(name_or_path, os.X_OK):
            return name_or_path
    else:
        found = shutil.which(name_or_path)
        if found:
            return found
        for folder in SEARCH_DIRS:
            candidate = Path(folder) / name_or_path
            if os.access(candidate, os.X_OK):
                return str(candidate)
    name = Path(name_or_path).name
    package = packages.get(name, default_package or name)
    raise error(
        f"{name_or_path} not found: install the Debian package {package} "
        f"(sudo apt-get install -y {package}), or run `make setup`"
    )


def pid_alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (exited, not yet reaped) counts as dead and is reaped."""
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def command_line(pid: int) -> bytes:
    """The NUL-separated command line of `pid` (empty when it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def pid_from_file(pid_file: Path, *, runs: Callable[[bytes], bool] | None = None) -> int | None:
    """The pid written in `pid_file` if it is alive and (with `runs`) its command line passes."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if not pid_alive(pid):
        return None
    if runs is not None and not runs(command_line(pid)):
        return None
    return pid


def program_is(name: str) -> Callable[[bytes], bool]:
    """A `runs` test for `pid_from_file`: the command's program file is called `name`."""

    def test(cmdline: bytes) -> bool:
        program = cmdline.split(b"\0", 1)[0]
        return Path(os.fsdecode(program)).name == Path(name).name

    return test


def port_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def spawn_detached(
    argv: Sequence[str],
    *,
    log_file: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.Popen[bytes]:
    """Start `argv` in a new session (group id = its pid), output appended to `log_file`."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        return subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=preexec_fn,
        )


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Signal the process group `pgid` (the pid of a process we spawned); gone is fine.

    By group id, not `getpgid(pid)`: the group's other members are still reached after its
    leader has exited.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def wait_gone(pid: int, timeout: float) -> bool:
    """Wait up to `timeout` seconds for `pid` to end; True if it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return not pid_alive(pid)


def stop_group(
    pid: int, *, timeout: float, first: signal.Signals = signal.SIGTERM, kill_wait: float = 5.0
) -> None:
    """`first` to the group of `pid`, SIGKILL to it if `pid` is not gone after `timeout` s."""
    signal_group(pid, first)
    if not wait_gone(pid, timeout):
        signal_group(pid, signal.SIGKILL)
        wait_gone(pid, kill_wait)


class StartFailed(Exception):
    """`wait_ready` gave up; the caller raises its own error type with this message."""


def wait_ready(
    process: subprocess.Popen[bytes],
    *,
    answers: Callable[[], bool],
    timeout: float,
    name: str,
    log_file: Path,
    poll: float = 0.1,
    stop: Callable[[], object] | None = None,
) -> None:
    """Return once `process` answers; `StartFailed` when it exits or does not answer within
    `timeout` seconds, with the end of its log.

    On a timeout the process is stopped first: by `stop` when it has a clean way (Airflow's
    components shut down on SIGINT), else by SIGKILL to its process group.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StartFailed(
                f"{name} exited with code {process.returncode} while starting; "
                f"the end of {log_file}:\n{tail(log_file)}"
            )
        if answers():
            return
        time.sleep(poll)
    if stop is not None:
        stop()
    else:
        signal_group(process.pid, signal.SIGKILL)
        wait_gone(process.pid, 5)
    raise StartFailed(
        f"{name} did not answer within {timeout:.0f} s (stopped); "
        f"the end of {log_file}:\n{tail(log_file)}"
    )
