"""Start and stop one local `mariadbd` from the Debian binaries.

The rules we follow:

* the rules of every program we run (`ledgerguard.processes`): own process group, "port in
  use" refused, ready = alive *and* answering within a timeout, the log's tail in every error;
* stop is the SQL `SHUTDOWN` (the Debian core packages ship no `mariadb-admin`), then SIGTERM to
  the group, then SIGKILL, each bounded in time.
"""

from __future__ import annotations

import contextlib
import getpass
import re
import signal
import subprocess

import pymysql

from ledgerguard.cluster.errors import (
    BinaryNotFound,
    ClusterError,
    DatadirMismatch,
    PortInUse,
    ServerStartError,
)
from ledgerguard.cluster.spec import ServerSpec
from ledgerguard.processes import (
    StartFailed,
    find_program,
    pid_from_file,
    port_answers,
    signal_group,
    spawn_detached,
    wait_gone,
    wait_ready,
)

_PACKAGE_OF = {"mariadbd": "mariadb-server-core", "mariadb-install-db": "mariadb-server-core"}


def find_binary(name_or_path: str) -> str:
    """Absolute path of a server binary, or `BinaryNotFound` naming the package to install."""
    return find_program(
        name_or_path,
        packages=_PACKAGE_OF,
        error=BinaryNotFound,
        default_package="mariadb-server-core",
    )


def binary_version(mariadbd: str) -> str:
    """`10.11.19-MariaDB` style version of the installed server binary."""
    out = subprocess.run([mariadbd, "--version"], capture_output=True, text=True, check=True)
    match = re.search(r"Ver\s+(\S+)", out.stdout)
    if not match:
        raise ClusterError(f"cannot read the version of {mariadbd}: {out.stdout.strip()!r}")
    return match.group(1)


def _major_minor(version: str) -> str:
    return ".".join(version.split("-")[0].split(".")[:2])


class LocalServer:
    """One `mariadbd` process described by a `ServerSpec`."""

    def __init__(self, spec: ServerSpec, *, mariadbd: str, install_db: str) -> None:
        self.spec = spec
        self.mariadbd = mariadbd
        self.install_db = install_db

    # --- files -------------------------------------------------------------------------------
    @property
    def initialized(self) -> bool:
        return (self.spec.datadir / "mysql").is_dir()

    def prepare(self, *, binary_version_: str) -> bool:
        """Create folders, config and (first time only) the datadir; True if it was created.

        Refuses a datadir made by another server version or by MySQL, rather than letting the
        server half-upgrade it.
        """
        spec = self.spec
        for folder in (spec.base_dir, spec.tmpdir):
            folder.mkdir(parents=True, exist_ok=True)
        spec.config_file.write_text(spec.render_config())
        if self.initialized:
            self._check_datadir_version(binary_version_)
            return False
        if spec.datadir.exists() and any(spec.datadir.iterdir()):
            raise DatadirMismatch(
                f"{spec.datadir} is not empty but holds no MariaDB system tables; "
                "move it away or run `ledgerguard cluster reset`"
            )
        result = subprocess.run(
            [
                self.install_db,
                "--no-defaults",
                f"--datadir={spec.datadir}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                f"--user={getpass.getuser()}",
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise ServerStartError(
                f"mariadb-install-db failed for the {spec.role} ({spec.datadir}):\n"
                f"{result.stdout[-2000:]}{result.stderr[-2000:]}"
            )
        return True

    def _check_datadir_version(self, binary_version_: str) -> None:
        info = self.spec.datadir / "mysql_upgrade_info"
        made_by = info.read_text().strip("\x00 \n") if info.exists() else ""
        if not made_by:
            if (self.spec.datadir / "mysql.ibd").exists():
                made_by = "MySQL 8"
            else:
                return
        if _major_minor(made_by) != _major_minor(binary_version_) or "MariaDB" not in made_by:
            raise DatadirMismatch(
                f"the {self.spec.role} datadir {self.spec.datadir} was made by {made_by}, but the "
                f"installed server is {binary_version_}; back it up and run "
                "`ledgerguard cluster reset` (wipes it), or install the matching server"
            )

    # --- process -----------------------------------------------------------------------------
    def pid(self) -> int | None:
        """The pid from the server's own pid file if that process is alive, else None."""
        return pid_from_file(self.spec.pid_file)

    def is_running(self) -> bool:
        return self.pid() is not None

    def start(self, *, timeout: float) -> bool:
        """Start the server if it is not running; True if we started it."""
        spec = self.spec
        if self.is_running():
            return False
        if port_answers(spec.host, spec.port):
            raise PortInUse(
                f"port {spec.port} ({spec.role}) is already in use by another process: stop it, "
                f"or choose another port with LEDGERGUARD_{spec.base_dir.name.upper()}_PORT"
            )
        with contextlib.suppress(FileNotFoundError):
            spec.socket.unlink()
        argv = [self.mariadbd, f"--defaults-file={spec.config_file}", f"--user={getpass.getuser()}"]
        process = spawn_detached(argv, log_file=spec.error_log)
        try:
            wait_ready(
                process,
                answers=self.answers,
                timeout=timeout,
                name=f"the {spec.role} mariadbd",
                log_file=spec.error_log,
            )
        except StartFailed as exc:
            raise ServerStartError(str(exc)) from None
        return True

    def roll_back_prepared(self, *, timeout: float) -> None:
        """Roll back transactions a copied datadir holds in the prepared state, server stopped.

        A hot copy (`mariadb-backup`) of a replica applying in parallel can catch a transaction
        InnoDB has prepared (binlog two-phase commit) but not committed: it waited for an
        earlier one when `BACKUP STAGE BLOCK_COMMIT` froze commits, so it is not part of the
        copy's GTID position. The copy has no binlog to decide its fate, and `mariadbd`
        refuses to start ("Found 1 prepared transactions!", MDEV-36025). Rolling it back is
        what that position says. `--tc-heuristic-recover=ROLLBACK` does it and then always
        exits (status 1, "Please restart without --tc-heuristic-recover"), so the pass runs in
        the foreground, without networking, its binlog in the tmpdir and deleted afterwards
        (the copy's own binlog starts at the real start). A datadir with nothing prepared is
        left as it was; a failure the pass cannot fix shows in the real start's error.
        """
        spec = self.spec
        spec.tmpdir.mkdir(parents=True, exist_ok=True)
        scratch_binlog = spec.tmpdir / "heuristic-recover-bin"
        argv = [
            self.mariadbd,
            f"--defaults-file={spec.config_file}",
            f"--user={getpass.getuser()}",
            "--tc-heuristic-recover=ROLLBACK",
            "--skip-networking",
            f"--log-bin={scratch_binlog}",
            f"--log-bin-index={scratch_binlog}.index",
        ]
        with spec.error_log.open("ab") as log:
            subprocess.run(argv, stdout=log, stderr=log, timeout=timeout, check=False)
        for leftover in spec.tmpdir.glob(f"{scratch_binlog.name}*"):
            leftover.unlink()

    def answers(self, *, timeout: float = 2.0) -> bool:
        """Whether the server speaks the protocol on its socket (access denied still counts).

        Bounded: a stopped process (SIGSTOP) still has its socket accepted by the kernel, and the
        handshake would then wait forever without the read timeout.
        """
        if not self.spec.socket.exists():
            return False
        try:
            pymysql.connect(
                unix_socket=str(self.spec.socket),
                user="",
                connect_timeout=timeout,
                read_timeout=timeout,
                write_timeout=timeout,
            ).close()
        except pymysql.err.OperationalError as exc:
            return exc.args[0] in (1044, 1045, 1698)
        return True

    def fence(self, *, timeout: float = 5.0) -> bool:
        """Stop a server that runs but does not answer, by its pid; True if it is gone.

        SIGTERM to its process group, SIGKILL after `timeout` seconds. Never SIGCONT: a stopped
        server must not resume and finish commits while the replica is being promoted. Used by
        failover before promoting, so two writable servers never exist.
        """
        pid = self.pid()
        if pid is None:
            return True
        signal_group(pid, signal.SIGTERM)
        if wait_gone(pid, timeout):
            return True
        signal_group(pid, signal.SIGKILL)
        return wait_gone(pid, 10)

    def stop(self, *, root_password: str, timeout: float = 60.0) -> bool:
        """Stop the server cleanly; True if it was running."""
        pid = self.pid()
        if pid is None:
            return False
        try:
            conn = pymysql.connect(
                unix_socket=str(self.spec.socket),
                user="root",
                password=root_password,
                connect_timeout=2,
                read_timeout=5,
                write_timeout=5,
            )
            with conn.cursor() as cur:
                cur.execute("SHUTDOWN")
            conn.close()
        except pymysql.MySQLError:
            signal_group(pid, signal.SIGTERM)
        if wait_gone(pid, timeout):
            return True
        signal_group(pid, signal.SIGTERM)
        if wait_gone(pid, 10):
            return True
        self.kill()
        return True

    def kill(self) -> None:
        """SIGKILL the server's process group (a crash, as chaos tests want it)."""
        pid = self.pid()
        if pid is not None:
            signal_group(pid, signal.SIGKILL)
            wait_gone(pid, 10)
