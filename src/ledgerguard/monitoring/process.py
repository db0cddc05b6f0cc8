"""Start, stop and probe one local monitoring process (Prometheus, a mysqld-exporter).

The rules of every program we run are in `ledgerguard.processes` (own process group, pid file
trusted only while it names a live process of the expected binary, "port in use" refused,
ready = alive *and* answering HTTP within a timeout). Its pid and log live under the state
directory; these programs write no pid file of their own, so we write the one of the process
we spawn.
"""

from __future__ import annotations

import os
import signal
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from ledgerguard.monitoring.errors import BinaryNotFound, PortInUse, ProcessStartError
from ledgerguard.processes import (
    StartFailed,
    find_program,
    pid_from_file,
    port_answers,
    program_is,
    spawn_detached,
    stop_group,
    wait_ready,
)

#: The Debian package that ships each program.
PACKAGE_OF = {
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "prometheus-mysqld-exporter": "prometheus-mysqld-exporter",
}


def find_tool(name: str) -> str:
    """Absolute path of a monitoring program, or `BinaryNotFound` naming its Debian package."""
    return find_program(name, packages=PACKAGE_OF, error=BinaryNotFound)


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
        return pid_from_file(self.pid_file, runs=program_is(self.argv[0]))

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
        process = spawn_detached(
            self.argv, log_file=self.log_file, env=clean_environment() if env is None else env
        )
        self.pid_file.write_text(f"{process.pid}\n")
        try:
            wait_ready(
                process,
                answers=lambda: self.answers(timeout=0.5),
                timeout=timeout,
                name=f"{self.name} ({self.url}{self.ready_path})",
                log_file=self.log_file,
            )
        except StartFailed as exc:
            self.pid_file.unlink(missing_ok=True)
            raise ProcessStartError(str(exc)) from None
        return True

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
        stop_group(pid, timeout=timeout)
        self.pid_file.unlink(missing_ok=True)
        return True
