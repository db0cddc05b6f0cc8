"""Start, stop and probe one local monitoring process (Prometheus, a mysqld-exporter).

The same rules as the database servers (`ledgerguard.cluster.process`, after mirakuru):

* the process runs in its own process group, so a stop signals nothing else;
* its pid and log live under the state directory; the pid file is trusted only while that pid
  is alive *and* runs the expected binary (a reused pid is never signalled);
* we refuse to start when the port already answers and the process is not ours;
* ready means still alive *and* answering HTTP within a timeout; a process that dies raises at
  once with the tail of its log.

These programs write no pid file of their own, so we write the one of the process we spawn.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from ledgerguard.cluster import process as cluster_process
from ledgerguard.cluster.errors import BinaryNotFound as ServerBinaryNotFound
from ledgerguard.cluster.process import pid_alive, port_answers, tail
from ledgerguard.monitoring.errors import BinaryNotFound, PortInUse, ProcessStartError

#: The Debian package that ships each program.
PACKAGE_OF = {
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "prometheus-mysqld-exporter": "prometheus-mysqld-exporter",
}


def find_tool(name: str) -> str:
    """Absolute path of a monitoring program, or `BinaryNotFound` naming its Debian package."""
    try:
        return cluster_process.find_binary(name)
    except ServerBinaryNotFound:
        package = PACKAGE_OF.get(Path(name).name, name)
        raise BinaryNotFound(
            f"{name} not found: install the Debian package {package} "
            f"(sudo apt-get install -y {package}), or run `make setup`"
        ) from None


def clean_environment() -> dict[str, str]:
    """The environment our programs start with: nothing of the caller's but PATH and locale.

    The caller's environment may hold secrets (MYSQL_ROOT_PASSWORD, ...) that these programs
    need not see, and mysqld-exporter 0.14 prefers a stray `DATA_SOURCE_NAME` over its
    `--config.my-cnf` file.
    """
    keep = ("PATH", "LANG", "LC_ALL", "TZ")
    return {name: os.environ[name] for name in keep if name in os.environ}


def http_ok(url: str, *, timeout: float = 1.0) -> bool:
    """Whether `url` answers 200 within `timeout` seconds."""
    try:
        return httpx.get(url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass(frozen=True)
class ProcessStatus:
    """One monitoring process as `status` reports it."""

    name: str
    url: str
    pid: int | None
    answering: bool
    log_file: str

    @property
    def up(self) -> bool:
        return self.pid is not None and self.answering

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"up": self.up}


@dataclass(frozen=True)
class LocalProcess:
    """One long-running HTTP program we start from the Debian binaries."""

    name: str
    argv: tuple[str, ...]
    host: str
    port: int
    ready_path: str
    pid_file: Path
    log_file: Path
    port_setting: str

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # --- state ----------------------------------------------------------------------------------
    def pid(self) -> int | None:
        """Our process's pid if it is alive and still runs our binary, else None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if not pid_alive(pid):
            return None
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
        except OSError:
            return None
        return pid if Path(os.fsdecode(command)).name == Path(self.argv[0]).name else None

    def answers(self, *, timeout: float = 1.0) -> bool:
        return http_ok(self.url + self.ready_path, timeout=timeout)

    def status(self) -> ProcessStatus:
        pid = self.pid()
        return ProcessStatus(
            name=self.name,
            url=self.url,
            pid=pid,
            answering=pid is not None and self.answers(),
            log_file=str(self.log_file),
        )

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self, *, timeout: float, env: dict[str, str] | None = None) -> bool:
        """Start the program unless it runs already; True if we started it.

        `env` defaults to `clean_environment()`, never the caller's whole environment.
        """
        if self.pid() is not None:
            return False
        if port_answers(self.host, self.port):
            raise PortInUse(
                f"port {self.port} ({self.name}) is already in use by another process: stop it, "
                f"or choose another port with {self.port_setting}"
            )
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                list(self.argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=clean_environment() if env is None else env,
            )
        self.pid_file.write_text(f"{process.pid}\n")
        self._wait_ready(process, timeout=timeout)
        return True

    def _wait_ready(self, process: subprocess.Popen[bytes], *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise ProcessStartError(
                    f"{self.name} exited with code {process.returncode} while starting; "
                    f"the end of {self.log_file}:\n{tail(self.log_file)}"
                )
            if self.answers(timeout=0.5):
                return
            time.sleep(0.1)
        _signal_group(process.pid, signal.SIGKILL)
        _wait_gone(process.pid, 5)
        self.pid_file.unlink(missing_ok=True)
        raise ProcessStartError(
            f"{self.name} did not answer on {self.url}{self.ready_path} within {timeout:.0f} s "
            f"(killed); the end of {self.log_file}:\n{tail(self.log_file)}"
        )

    def reload(self) -> bool:
        """SIGHUP the running process (Prometheus re-reads its config); True if it runs."""
        pid = self.pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGHUP)
        return True

    def stop(self, *, timeout: float = 10.0) -> bool:
        """SIGTERM the process group, SIGKILL after `timeout`; True if it was running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        _signal_group(pid, signal.SIGTERM)
        if not _wait_gone(pid, timeout):
            _signal_group(pid, signal.SIGKILL)
            _wait_gone(pid, 5)
        self.pid_file.unlink(missing_ok=True)
        return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(os.getpgid(pid), sig)


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return not pid_alive(pid)
