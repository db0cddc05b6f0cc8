"""Logical backups: a consistent SQL dump of the replica, for servers `mariadb-backup` cannot copy.

`mariadb-backup` copies a local MariaDB datadir; the Compose stack's MySQL 8.4 servers (other
containers, another on-disk format) are backed up with what the MySQL image ships instead. The
backup method is `LEDGERGUARD_BACKUP_METHOD` (`physical` | `logical`), by default `physical` on
MariaDB and `logical` on MySQL (`backup_method`).

A logical backup is one file, `dump.sql`, of the application, audit and heartbeat databases:

=====================  ==============================================  =========================
what                   MariaDB 10.11 (`mariadb-dump`)                  MySQL 8.4 (`mysqldump`)
=====================  ==============================================  =========================
consistent snapshot    `--single-transaction`                          `--single-transaction`
binlog position        `--master-data=2 --gtid`: a commented           `--source-data=2
                       `SET GLOBAL gtid_slave_pos='...'` at the end    --set-gtid-purged=ON`: a
                                                                       `SET @@GLOBAL.GTID_PURGED`
                                                                       at the head
loading it             `mariadb` with `sql_log_bin=0`, then            `mysql` (the dump turns
                       `gtid_slave_pos` set to the dump's position     the binlog off and sets
                                                                       `GTID_PURGED` itself)
replaying binlogs      `mariadb-binlog --start-position=<GTID>`        `mysqlbinlog
                                                                       --exclude-gtids=<set>`
=====================  ==============================================  =========================

The dump's GTID position is what the manifest records, so `restore` replays the archive from
exactly there and `verify` lets the loaded copy follow the replica from there. Accounts are not
in the dump (that would need reading `mysql.*`, password hashes included): a restore creates them
from the settings like `cluster up` does.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from ledgerguard.backup.catalog import BackupInfo
from ledgerguard.backup.errors import BackupError
from ledgerguard.backup.scratch import (
    NO_BINLOG,
    start_fresh,
    start_with_one_time_root,
    unpack_backup,
)
from ledgerguard.backup.tools import find_tool, tool_environment, write_option_file
from ledgerguard.cluster.admin import Endpoint, admin_connection, run
from ledgerguard.cluster.heartbeat import DATABASE as HEARTBEAT_DATABASE
from ledgerguard.cluster.process import LocalServer
from ledgerguard.cluster.provision import provision_primary, secure_root
from ledgerguard.cluster.spec import ServerSpec
from ledgerguard.db.dialect import Flavour, Statement, detect_flavour
from ledgerguard.db.tables import audit_schema
from ledgerguard.settings import Settings

PHYSICAL = "physical"
LOGICAL = "logical"
#: The one file of a logical backup (inside the backup's data folder).
DUMP_FILE = "dump.sql"

#: The dump and client programs of each flavour (Debian `mariadb-client`; the MySQL image).
DUMP_TOOL = {Flavour.MARIADB: "mariadb-dump", Flavour.MYSQL: "mysqldump"}
CLIENT_TOOL = {Flavour.MARIADB: "mariadb", Flavour.MYSQL: "mysql"}
BINLOG_TOOL = {Flavour.MARIADB: "mariadb-binlog", Flavour.MYSQL: "mysqlbinlog"}

#: MariaDB: after loading a dump without binlogging, where replication and replay continue.
SET_SLAVE_POS = Statement("SET GLOBAL gtid_slave_pos = %s")

_MARIADB_POSITION = re.compile(r"SET GLOBAL gtid_slave_pos\s*=\s*'([^']*)'")
_MYSQL_PURGED = re.compile(r"SET @@GLOBAL\.GTID_PURGED\s*=\s*(?:/\*!80000 '\+'\*/\s*)?'([^']*)'")
#: How much of each end of a dump is searched for its position (it is outside any table).
_EDGE_BYTES = 1 << 16


def backup_method(settings: Settings, flavour: Flavour) -> str:
    """The configured method, else the flavour's default; physical on MySQL is refused."""
    method = settings.backup_method or (PHYSICAL if flavour is Flavour.MARIADB else LOGICAL)
    if method == PHYSICAL and flavour is not Flavour.MARIADB:
        raise BackupError(
            "LEDGERGUARD_BACKUP_METHOD=physical needs MariaDB (mariadb-backup); this server is "
            f"{flavour.value}: use LEDGERGUARD_BACKUP_METHOD=logical (or leave it empty)"
        )
    return method


def dumped_databases(settings: Settings) -> list[str]:
    """What a logical backup holds: the application, audit and heartbeat databases."""
    return [settings.database, audit_schema(settings.database), HEARTBEAT_DATABASE]


def dump_command(
    flavour: Flavour, *, tool: str, option_file: Path, databases: list[str]
) -> list[str]:
    """The dump of `databases` in one consistent snapshot, with its GTID position."""
    position = (
        ["--master-data=2", "--gtid"]
        if flavour is Flavour.MARIADB
        else ["--source-data=2", "--set-gtid-purged=ON"]
    )
    return [
        tool,
        f"--defaults-file={option_file}",  # first: the login, never on the command line
        "--single-transaction",
        *position,
        "--quick",
        "--triggers",
        "--events",
        "--hex-blob",
        "--skip-dump-date",
        "--databases",
        *databases,
    ]


def load_command(flavour: Flavour, *, tool: str, option_file: Path) -> list[str]:
    """The client that loads a dump without writing it to the loading server's binlog."""
    argv = [tool, f"--defaults-file={option_file}", "--binary-mode"]
    if flavour is Flavour.MARIADB:
        # mariadb-dump leaves the binlog on; MySQL's dump turns it off itself (GTID_PURGED)
        argv.append(f"--init-command={NO_BINLOG.sql}")
    return argv


def replay_command(
    flavour: Flavour,
    *,
    tool: str,
    files: list[Path],
    start: str | None,
    stop_gtid: str | None,
    stop_datetime: str | None,
) -> list[str]:
    """Binlog files as SQL, after GTID position `start`, up to `stop_gtid` / `stop_datetime`.

    MariaDB's reader takes GTID positions (`--start-position`/`--stop-position`); MySQL's
    takes GTID sets to skip (`--exclude-gtids`: everything the backup holds) and has no GTID
    stop, so a stop at a GTID is `--include-gtids` of the set up to it.
    """
    argv = [tool, "--no-defaults"]
    if flavour is Flavour.MARIADB:
        if start:
            argv.append(f"--start-position={start}")
        if stop_gtid:
            argv.append(f"--stop-position={stop_gtid}")
    else:
        if start:
            argv.append(f"--exclude-gtids={start}")
        if stop_gtid:
            argv.append(f"--include-gtids={stop_gtid}")
    if stop_datetime:
        argv.append(f"--stop-datetime={stop_datetime}")
    return argv + [str(path) for path in files]


def stream_command(
    flavour: Flavour,
    *,
    tool: str,
    option_file: Path,
    server_id: int,
    folder: Path,
    first: str,
    exclude: str | None = None,
) -> list[str]:
    """The continuous binlog archive: raw binlog files of the source from `first` on, forever.

    MariaDB names the announced server id `--stop-never-slave-server-id`, MySQL
    `--connection-server-id`. `exclude` (MySQL only): ask by GTID instead of by file, for every
    transaction outside that set (`--read-from-remote-source=BINLOG-DUMP-GTIDS
    --exclude-gtids=...`, filtered by the source: MySQL 8.4 manual, mysqlbinlog options); the
    file name is still given, the server starts at the first file holding a missing GTID.
    """
    if flavour is Flavour.MARIADB:
        if exclude:
            raise ValueError("mariadb-binlog streams by file only")
        remote = ["--read-from-remote-server", f"--stop-never-slave-server-id={server_id}"]
    elif exclude:
        remote = [
            "--read-from-remote-source=BINLOG-DUMP-GTIDS",
            f"--exclude-gtids={exclude}",
            f"--connection-server-id={server_id}",
        ]
    else:
        remote = ["--read-from-remote-server", f"--connection-server-id={server_id}"]
    return [
        tool,
        f"--defaults-file={option_file}",
        remote[0],
        "--raw",
        "--stop-never",
        *remote[1:],
        f"--result-file={folder}/",
        first,
    ]


def dump_position(flavour: Flavour, head: str) -> str:
    """The GTID position recorded in a dump's text (`BackupError` if there is none)."""
    pattern = _MARIADB_POSITION if flavour is Flavour.MARIADB else _MYSQL_PURGED
    match = pattern.search(head)
    if match is None:
        flags = "--master-data=2 --gtid" if flavour is Flavour.MARIADB else "--set-gtid-purged=ON"
        raise BackupError(
            f"the dump holds no GTID position ({flags} missing, or the dumped server has no binlog)"
        )
    return re.sub(r"\s+", "", match.group(1))


def read_dump_position(flavour: Flavour, dump: Path) -> str:
    """The dump's GTID position: MySQL writes it at the head, mariadb-dump 10.11 at the end
    (its "deferred gtid setting"), so both ends are read."""
    with dump.open("rb") as handle:
        head = handle.read(_EDGE_BYTES)
        handle.seek(max(0, dump.stat().st_size - _EDGE_BYTES))
        tail = handle.read()
    return dump_position(flavour, (head + b"\n" + tail).decode("utf-8", errors="replace"))


def dump_to_file(argv: list[str], *, target: Path, log_file: Path) -> None:
    """Run the dump with its output in `target`; `BackupError` with its messages if it fails."""
    env = tool_environment()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out:
        result = subprocess.run(argv, stdout=out, stderr=subprocess.PIPE, env=env)
    messages = result.stderr.decode(errors="replace")
    with log_file.open("a") as log:
        log.write(f"$ {' '.join(argv)}\n{messages}\n")
    if result.returncode != 0:
        tail = "\n".join(messages.splitlines()[-15:])
        raise BackupError(f"{Path(argv[0]).name} failed (exit code {result.returncode}):\n{tail}")


def load_dump(argv: list[str], *, dump: Path, log_file: Path) -> None:
    """Feed `dump` to the client `argv`; `BackupError` naming the log if it fails."""
    env = tool_environment()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with dump.open("rb") as source, log_file.open("ab") as log:
        log.write(f"$ {' '.join(argv)} < {dump.name}\n".encode())
        log.flush()
        code = subprocess.run(argv, stdin=source, stdout=log, stderr=log, env=env).returncode
    if code != 0:
        tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-5:])
        raise BackupError(f"loading {dump.name} failed (exit code {code}):\n{tail}")


def load_logical_backup(
    backup: BackupInfo,
    *,
    work_dir: Path,
    client: dict[str, str | int],
    target: ServerSpec | Endpoint,
) -> Flavour:
    """Load the dump of `backup` into the running server `target` and leave it at the dump's
    GTID position; returns the backup's flavour.

    `client` are the client program's login options (`user`, `password`, and `socket` or
    `host`/`port`), also used for the one admin statement: MariaDB's `gtid_slave_pos` (MySQL's
    dump sets `GTID_PURGED` itself). The dump is unpacked under `work_dir` (checked against the
    manifest) and deleted afterwards.
    """
    flavour = detect_flavour(backup.manifest.server_version)
    dump_dir = work_dir / "dump"
    unpack_backup(backup.folder, backup.manifest, dump_dir)
    option_file = write_option_file(work_dir / "client.cnf", "client", client)
    try:
        load_dump(
            load_command(flavour, tool=find_tool(CLIENT_TOOL[flavour]), option_file=option_file),
            dump=dump_dir / DUMP_FILE,
            log_file=work_dir / "load.log",
        )
    finally:
        option_file.unlink(missing_ok=True)
        shutil.rmtree(dump_dir, ignore_errors=True)
    if flavour is Flavour.MARIADB:
        login = {"user": str(client["user"]), "password": str(client["password"])}
        with admin_connection(target, **login) as conn:
            run(conn, Statement(SET_SLAVE_POS.sql, (backup.manifest.gtid,)))
    return flavour


def start_logical_copy(
    settings: Settings,
    backup: BackupInfo,
    spec: ServerSpec,
    *,
    root_password: str | None = None,
) -> tuple[LocalServer, str]:
    """A new server on `spec` holding the dump of `backup`, at the dump's GTID position; returns
    it with root's password.

    `verify`'s scratch server (`one_time_root`) gets a one-time root password; a restore gets
    `root_password` and the application accounts from the settings (outside the binlog), as
    `cluster up` would create them, since the dump holds no accounts and replayed binlogs may
    change them.
    """
    if spec.one_time_root:
        server, password = start_with_one_time_root(settings, spec, fresh=True)
    elif root_password is None:
        raise ValueError("a logical copy needs root_password or a one_time_root spec")
    else:
        server, password = start_fresh(settings, spec), root_password
    try:
        if not spec.one_time_root:
            with admin_connection(spec, password="") as conn:
                secure_root(conn, password=password)
        load_logical_backup(
            backup,
            work_dir=spec.base_dir,
            client={"user": "root", "password": password, "socket": spec.socket},
            target=spec,
        )
        if not spec.one_time_root:
            with admin_connection(spec, password=password) as conn:
                run(conn, NO_BINLOG)
                provision_primary(conn, settings)
    except BaseException:
        server.kill()
        raise
    return server, password
