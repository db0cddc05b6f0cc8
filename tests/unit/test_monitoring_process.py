"""`LocalProcess`: start/stop in its own group, readiness, busy ports, dead and reused pids.

A tiny `python -m http.server` stands in for Prometheus: the rules are the same for any HTTP
program, and it starts in a fraction of a second.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledgerguard.monitoring.errors import BinaryNotFound, PortInUse, ProcessStartError
from ledgerguard.monitoring.process import LocalProcess, find_tool
from ledgerguard.processes import pid_alive
from tests.support import free_ports


def _process(tmp_path: Path, argv: tuple[str, ...], port: int) -> LocalProcess:
    return LocalProcess(
        name="web",
        argv=argv,
        host="127.0.0.1",
        port=port,
        ready_path="/",
        pid_file=tmp_path / "web.pid",
        log_file=tmp_path / "web.log",
        port_setting="LEDGERGUARD_TEST_PORT",
    )


@pytest.fixture
def web(tmp_path: Path) -> Iterator[LocalProcess]:
    (port,) = free_ports(1)
    argv = (sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port))
    process = _process(tmp_path, argv, port)
    try:
        yield process
    finally:
        process.stop(timeout=5)


def test_start_status_stop(web: LocalProcess):
    assert web.start(timeout=20) is True
    pid = web.pid()
    assert pid is not None and os.getpgid(pid) == pid  # its own process group
    assert web.status().up
    assert web.start(timeout=20) is False  # already running: left alone
    assert web.stop() is True
    assert not pid_alive(pid)
    assert not web.pid_file.exists()
    assert web.status().to_dict()["up"] is False
    assert web.stop() is False


def test_refuses_a_port_someone_else_answers_on(web: LocalProcess):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", web.port))
        busy.listen()
        with pytest.raises(PortInUse, match="LEDGERGUARD_TEST_PORT"):
            web.start(timeout=5)
    assert web.pid() is None


def test_a_process_that_dies_raises_with_its_log(tmp_path: Path):
    (port,) = free_ports(1)
    dying = _process(tmp_path, ("/bin/sh", "-c", "echo 'bad flag --nope' >&2; exit 3"), port)
    with pytest.raises(ProcessStartError, match="bad flag --nope"):
        dying.start(timeout=10)
    assert not dying.pid_file.exists()


def test_a_reused_pid_running_another_program_is_not_ours(tmp_path: Path):
    (port,) = free_ports(1)
    process = _process(tmp_path, ("/usr/bin/prometheus",), port)
    process.pid_file.write_text(f"{os.getpid()}\n")  # alive, but it is pytest
    assert process.pid() is None
    assert process.stop() is False  # and nothing was signalled: we are still here


def test_missing_tool_names_its_debian_package():
    with pytest.raises(BinaryNotFound, match="apt-get install -y prometheus-mysqld-exporter"):
        find_tool("/nonexistent/prometheus-mysqld-exporter")


def test_programs_do_not_inherit_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MYSQL_ROOT_PASSWORD", "do-not-leak")
    monkeypatch.setenv("DATA_SOURCE_NAME", "root:do-not-leak@tcp(127.0.0.1:3306)/")
    (port,) = free_ports(1)
    # `; true` keeps the shell (our pid, its group leader) alive under any /bin/sh
    script = f"env > {tmp_path / 'env.txt'}; {sys.executable} -m http.server {port}; true"
    process = _process(tmp_path, ("/bin/sh", "-c", script), port)
    try:
        process.start(timeout=20)
        seen = (tmp_path / "env.txt").read_text()
    finally:
        process.stop(timeout=5)
    assert "do-not-leak" not in seen
    assert "PATH=" in seen
