"""The archiver: a managed background process keeping the primary's binlog streaming.

`ledgerguard up` starts it (`backup archive up` alone), `ledgerguard status` shows it, `down`
stops it. It is a small supervisor (this module run with `python -m`), in its own process
group with its pid file and log under `<backups>/run` and `<backups>/logs`, and it

* runs `mariadb-binlog --read-from-remote-server --raw --stop-never` (MySQL: `mysqlbinlog`, the
  flavour read from the server's version) as the backup account against the **acting
  primary**, starting where `ledgerguard.backup.archive.plan_stream` says;
* checks every second which server is the primary (`acting_primary`): after a failover it
  stops the stream and starts a new segment against the new primary, without gap; a stream
  that ends (primary restarted, network) is started again after a second;
* serves `/metrics` (`ledgerguard.backup.metrics`) on `LEDGERGUARD_BACKUP_METRICS_PORT`.

In Compose the supervisor is the `archiver` service's foreground process (`python -m
ledgerguard.backup.archiver`); locally `ledgerguard up` starts it detached.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import pymysql

from ledgerguard.backup.archive import list_segments, plan_stream
from ledgerguard.backup.catalog import BackupPaths
from ledgerguard.backup.errors import BackupError
from ledgerguard.backup.logical import BINLOG_TOOL, stream_command
from ledgerguard.backup.tools import backup_login, find_tool, write_option_file
from ledgerguard.cluster.admin import admin_connection, reach, scalar
from ledgerguard.cluster.spec import ServerSpec, server_specs
from ledgerguard.db.dialect import VERSION_QUERY, Statement, detect_flavour
from ledgerguard.errors import LedgerGuardError
from ledgerguard.processes import (
    StartFailed,
    pid_from_file,
    port_answers,
    spawn_detached,
    stop_group,
    wait_ready,
)
from ledgerguard.settings import Settings

#: server_id the stream announces to the primary (must differ from every replica's)
STREAM_SERVER_ID = 9001
READ_ONLY = Statement("SELECT @@GLOBAL.read_only")
#: The only secret the archiver process gets (`Settings.to_env(secrets=...)`).
ARCHIVER_SECRETS = ("backup_password",)


def acting_primary(settings: Settings) -> ServerSpec:
    """The server the archive must follow: the one `topology.json` names as primary.

    The one place that decides it: when failover records its topology differently (epochs,
    fencing), only this function changes.
    """
    return server_specs(settings)["primary"]


@dataclass(frozen=True)
class ArchiverFiles:
    pid_file: Any
    log_file: Any
    stream_pid_file: Any
    option_file: Any

    @classmethod
    def of(cls, settings: Settings) -> ArchiverFiles:
        paths = BackupPaths.of(settings)
        return cls(
            pid_file=paths.run / "archiver.pid",
            log_file=paths.logs / "archiver.log",
            stream_pid_file=paths.run / "mariadb-binlog.pid",
            option_file=paths.run / "archiver-client.cnf",
        )


@dataclass
class ArchiverStatus:
    running: bool
    pid: int | None
    streaming: bool
    metrics_url: str
    segment: str | None
    source: str | None
    last_event_at: str | None
    lag_seconds: float | None
    log_file: str

    @property
    def up(self) -> bool:
        return self.running and self.streaming

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"up": self.up}


def _log(message: str) -> None:
    print(f"{datetime.now(UTC).isoformat(timespec='seconds')} {message}", flush=True)


def archiver_pid(settings: Settings) -> int | None:
    return pid_from_file(
        ArchiverFiles.of(settings).pid_file, runs=lambda cmd: b"ledgerguard.backup.archiver" in cmd
    )


def stream_pid(settings: Settings) -> int | None:
    return pid_from_file(
        ArchiverFiles.of(settings).stream_pid_file,
        runs=lambda cmd: any(
            tool.encode() in cmd.split(b"\0", 1)[0] for tool in BINLOG_TOOL.values()
        ),
    )


def start_archiver(settings: Settings, *, timeout: float = 30.0) -> bool:
    """Start the supervisor unless it runs; True if started. Ready = its /metrics answers."""
    if archiver_pid(settings) is not None:
        return False
    find_tool("mariadb-binlog")
    files = ArchiverFiles.of(settings)
    deadline = time.monotonic() + 3  # a just-stopped archiver may still be closing its port
    while port_answers(settings.bind_address, settings.backup_metrics_port):
        if time.monotonic() < deadline:
            time.sleep(0.2)
            continue
        raise BackupError(
            f"port {settings.backup_metrics_port} (archiver metrics) is already in use: stop "
            "that process or set LEDGERGUARD_BACKUP_METRICS_PORT"
        )
    files.pid_file.parent.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL")}
    # the backup account's secret only: the stream and its checks log in with nothing else
    env |= settings.to_env(secrets=ARCHIVER_SECRETS) | {"TZ": "UTC"}
    process = spawn_detached(
        [sys.executable, "-m", "ledgerguard.backup.archiver"], log_file=files.log_file, env=env
    )
    files.pid_file.write_text(f"{process.pid}\n")
    try:
        wait_ready(
            process,
            answers=lambda: port_answers(settings.bind_address, settings.backup_metrics_port),
            timeout=timeout,
            name="the binlog archiver",
            log_file=files.log_file,
        )
    except StartFailed as exc:
        files.pid_file.unlink(missing_ok=True)
        raise BackupError(str(exc)) from None
    return True


def stop_archiver(settings: Settings, *, timeout: float = 10.0) -> bool:
    """Stop the supervisor and its stream (one process group); True if it was running."""
    files = ArchiverFiles.of(settings)
    pid = archiver_pid(settings)
    if pid is None:
        files.pid_file.unlink(missing_ok=True)
        return False
    stop_group(pid, timeout=timeout)
    files.pid_file.unlink(missing_ok=True)
    files.stream_pid_file.unlink(missing_ok=True)
    return True


def archiver_status(settings: Settings) -> ArchiverStatus:
    """Process state and the archive's newest event (lag = now - that event)."""
    pid = archiver_pid(settings)
    streaming = pid is not None and stream_pid(settings) is not None
    try:
        segments = list_segments(settings)
        last = segments[-1].last_time() if segments else None
    except (OSError, ValueError):
        segments, last = [], None
    return ArchiverStatus(
        running=pid is not None,
        pid=pid,
        streaming=streaming,
        metrics_url=f"http://{settings.bind_address}:{settings.backup_metrics_port}/metrics",
        segment=segments[-1].folder.name if segments else None,
        source=segments[-1].address if segments else None,
        last_event_at=last.isoformat() if last else None,
        lag_seconds=(
            round((datetime.now(UTC) - last).total_seconds(), 1) if last is not None else None
        ),
        log_file=str(ArchiverFiles.of(settings).log_file),
    )


def archive_summary(status: dict[str, Any]) -> str:
    """One line for status tables (`ledgerguard status`, `backup archive status`), from
    `ArchiverStatus.to_dict()`."""
    if not status["running"]:
        return "archiver not running"
    lag = status["lag_seconds"]
    return (
        f"{'streaming' if status['streaming'] else 'NOT streaming'} from "
        f"{status['source'] or '-'} into {status['segment'] or '-'}, lag "
        f"{'-' if lag is None else f'{lag:.1f} s'}"
    )


# --- the supervisor process ---------------------------------------------------------------------
class Supervisor:
    """Keeps one binlog stream (`mariadb-binlog` / `mysqlbinlog`) running against the primary."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.files = ArchiverFiles.of(settings)
        self.child: subprocess.Popen[bytes] | None = None
        self.source: ServerSpec | None = None
        self.stopping = False

    def streaming(self) -> bool:
        return self.child is not None and self.child.poll() is None

    def _start_stream(self, primary: ServerSpec) -> None:
        login = backup_login(self.settings)
        with admin_connection(reach(primary), **login, connect_timeout=2) as conn:
            if scalar(conn, READ_ONLY):
                raise BackupError(f"{primary.base_dir.name}:{primary.port} is read-only")
            address = f"{primary.host}:{primary.port}"
            flavour = detect_flavour(str(scalar(conn, VERSION_QUERY)))
            start = plan_stream(
                self.settings, conn, server_id=primary.server_id, address=address, flavour=flavour
            )
        for note in start.notes:
            _log(f"WARNING: {note}")
        write_option_file(
            self.files.option_file,
            "client",
            {
                **login,
                "host": primary.host,
                "port": primary.port,
            },
        )
        argv = stream_command(
            flavour,
            tool=find_tool(BINLOG_TOOL[flavour]),
            option_file=self.files.option_file,
            server_id=STREAM_SERVER_ID,
            folder=start.segment.folder,
            first=start.file_name,
            exclude=str(start.exclude) if start.exclude is not None else None,
        )
        self.child = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        self.files.stream_pid_file.write_text(f"{self.child.pid}\n")
        self.source = primary
        _log(
            f"streaming {address} from {start.file_name} into {start.segment.folder.name}"
            f"{' (new segment)' if start.new_segment else ''}"
            f"{f' excluding {start.exclude}' if start.exclude is not None else ''}"
        )

    def _stop_stream(self) -> None:
        if self.child is not None and self.child.poll() is None:
            self.child.terminate()
            try:
                self.child.wait(10)
            except subprocess.TimeoutExpired:
                self.child.kill()
                self.child.wait()
        self.child = None
        self.files.stream_pid_file.unlink(missing_ok=True)

    def step(self) -> None:
        """One round: follow the acting primary, restart a stream that ended."""
        primary = acting_primary(self.settings)
        if self.streaming() and self.source is not None and self.source.port != primary.port:
            _log(f"the primary is now {primary.base_dir.name}:{primary.port}: switching")
            self._stop_stream()
        if not self.streaming():
            if self.child is not None:
                _log(f"the binlog stream ended with code {self.child.returncode}; restarting")
                self._stop_stream()
            self._start_stream(primary)

    def run(self) -> None:
        from prometheus_client import start_http_server
        from prometheus_client.registry import CollectorRegistry

        from ledgerguard.backup.metrics import BackupCollector

        registry = CollectorRegistry()
        registry.register(BackupCollector(self.settings, streaming=self.streaming))
        start_http_server(
            self.settings.backup_metrics_port, addr=self.settings.bind_address, registry=registry
        )
        signal.signal(signal.SIGTERM, self._on_term)
        _log(f"archiver up, metrics on port {self.settings.backup_metrics_port}")
        last_error = ""
        while not self.stopping:
            try:
                self.step()
                last_error = ""
            except (LedgerGuardError, pymysql.MySQLError, OSError, ValueError) as exc:
                if str(exc) != last_error:
                    _log(f"cannot stream yet: {exc}")
                    last_error = str(exc)
            time.sleep(1.0)
        self._stop_stream()
        _log("archiver stopped")

    def _on_term(self, *_: object) -> None:
        self.stopping = True


def main() -> None:
    Supervisor(Settings()).run()


if __name__ == "__main__":
    main()
