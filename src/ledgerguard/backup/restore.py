"""`restore`: a backup plus the archived binlogs up to a moment, into a **new** cluster folder.

1. the plan (`ledgerguard.backup.plan.plan_restore`): which backup, which archived binlogs,
   up to where; a target outside the recovery window is refused before anything is made;
2. the backup is unpacked into `<home>/restores/<id>/primary/` and `mariadbd` started there on a
   free port (never the cluster's folders or ports); a logical backup is loaded into a new
   server there instead, with the accounts from the settings (`ledgerguard.backup.logical`);
   with `LEDGERGUARD_BACKUP_SCRATCH_HOST` (Compose) it is loaded into that external, emptied
   server (`ledgerguard.backup.external`), the folder keeping only logs and `restore.json`;
3. the archived binlogs are replayed into it with `mariadb-binlog | mariadb`, segment by
   segment: from the backup's GTID position (exclusive) to the target, each segment up to where
   the next one starts. `--stop-datetime` stops at the first event at or after the target
   time: binlog times have whole-second resolution, so the second containing the target is
   excluded entirely (never anything after the target);
4. the server keeps running for inspection; `ledgerguard.backup.replace` makes it the cluster.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledgerguard.backup.errors import BackupError, RestoreRefused
from ledgerguard.backup.external import ExternalScratch, claim_scratch, external_scratch
from ledgerguard.backup.logical import (
    BINLOG_TOOL,
    CLIENT_TOOL,
    LOGICAL,
    load_logical_backup,
    replay_command,
    start_logical_copy,
)
from ledgerguard.backup.plan import ReplayStep, RestorePlan, plan_restore
from ledgerguard.backup.scratch import scratch_spec, start_restored, unpack_backup
from ledgerguard.backup.tools import find_tool, tool_environment, write_option_file
from ledgerguard.cluster.admin import Endpoint, admin_connection, run
from ledgerguard.cluster.process import LocalServer, find_binary
from ledgerguard.cluster.replica import executed_gtids
from ledgerguard.cluster.spec import ServerSpec
from ledgerguard.db.dialect import Flavour, Statement, detect_flavour
from ledgerguard.files import write_text_atomic
from ledgerguard.settings import Settings
from ledgerguard.utc import as_utc

Progress = Callable[[str], None]
RESTORE_INFO = "restore.json"
FLUSH_BINARY_LOGS = Statement("FLUSH BINARY LOGS")


def _quiet(_: str) -> None:
    """Default progress sink."""


def _replay(step: ReplayStep, *, flavour: Flavour, option_file: Path, log_file: Path) -> None:
    """`mariadb-binlog <files> | mariadb` for one step; `BackupError` when either side fails."""
    argv = replay_command(
        flavour,
        tool=find_tool(BINLOG_TOOL[flavour]),
        files=step.files,
        start=step.start or None,
        stop_gtid=step.stop_gtid,
        stop_datetime=(f"{as_utc(step.stop_time):%Y-%m-%d %H:%M:%S}" if step.stop_time else None),
    )
    client_argv = [find_tool(CLIENT_TOOL[flavour]), f"--defaults-file={option_file}"]
    env = tool_environment()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        log.write(f"$ {' '.join(argv)} | mariadb\n".encode())
        log.flush()
        reader = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, env=env)
        client = subprocess.Popen(
            [*client_argv, "--binary-mode"],
            stdin=reader.stdout,
            stdout=log,
            stderr=log,
            env=env,
        )
        assert reader.stdout is not None
        reader.stdout.close()
        client_code = client.wait()
        reader_code = reader.wait()
    if reader_code or client_code:
        raise BackupError(
            f"replaying {step.segment} failed (mariadb-binlog exit {reader_code}, mariadb exit "
            f"{client_code}); see {log_file}"
        )


def _replay_plan(
    plan: RestorePlan,
    *,
    flavour: Flavour,
    client: dict[str, Any],
    target: ServerSpec | Endpoint,
    folder: Path,
    progress: Progress,
) -> str:
    """Replay every step of `plan` into the server `target` (client login options `client`);
    returns the GTID position it ends at."""
    option_file = write_option_file(folder / "client.cnf", "client", client)
    try:
        for step in plan.steps:
            progress(
                f"replaying {len(step.files)} archived binlog file(s) of {step.segment} after "
                f"{step.start or 'the start'}"
            )
            _replay(step, flavour=flavour, option_file=option_file, log_file=folder / "replay.log")
    finally:
        option_file.unlink(missing_ok=True)
    with admin_connection(target, user=client["user"], password=client["password"]) as conn:
        # a new binlog file that starts at the restored position: a later archive segment
        # of this server begins exactly here
        run(conn, FLUSH_BINARY_LOGS)
        return executed_gtids(conn)


def _restore_into_external(
    settings: Settings,
    plan: RestorePlan,
    external: ExternalScratch,
    folder: Path,
    progress: Progress,
) -> RestoreResult:
    """The restore on the external scratch server (Compose): emptied, the dump loaded, the
    archive replayed; the folder keeps the logs and `restore.json`. Accounts are not created
    (that would need every account's secret): inspect it as the scratch server's admin."""
    if plan.backup.manifest.method != LOGICAL:
        raise RestoreRefused(
            f"backup {plan.backup.id} is {plan.backup.manifest.method}: the external scratch "
            "server (LEDGERGUARD_BACKUP_SCRATCH_HOST) loads logical backups only"
        )
    folder.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    progress(f"emptying the scratch server {external.address}, loading backup {plan.backup.id}")
    claim_scratch(settings, external)
    flavour = load_logical_backup(
        plan.backup, work_dir=folder, client=external.client_options, target=external.endpoint
    )
    unpacked = time.monotonic()
    gtid = _replay_plan(
        plan,
        flavour=flavour,
        client=external.client_options,
        target=external.endpoint,
        folder=folder,
        progress=progress,
    )
    result = RestoreResult(
        folder=folder,
        port=external.endpoint.port,
        socket=None,
        gtid=gtid,
        plan=plan,
        unpack_seconds=unpacked - began,
        replay_seconds=time.monotonic() - unpacked,
        host=external.endpoint.host,
        external=True,
    )
    write_text_atomic(
        folder / RESTORE_INFO, json.dumps(result.to_dict(), indent=2, default=str) + "\n"
    )
    progress(f"restored to GTID {gtid} on the scratch server {external.address}")
    return result


@dataclass
class RestoreResult:
    folder: Path
    port: int
    socket: Path | None  # None: on the external scratch server
    gtid: str
    plan: RestorePlan
    unpack_seconds: float = 0.0
    replay_seconds: float = 0.0
    host: str = "127.0.0.1"
    external: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "host": self.host,
            "port": self.port,
            "socket": str(self.socket) if self.socket else None,
            "external": self.external,
            "gtid": self.gtid,
            "plan": self.plan.to_dict(),
            "unpack_seconds": round(self.unpack_seconds, 2),
            "replay_seconds": round(self.replay_seconds, 2),
        }


def restore_folder_spec(settings: Settings, folder: Path, *, port: int | None = None) -> ServerSpec:
    """The restored server of `folder` (its primary/ subfolder), server_id 1 as a primary's.

    Configured like a replica: read-only for everyone but root (who replays), and without the
    event scheduler, so a replayed `ALTER EVENT ... ENABLE` (the heartbeat writer after a
    failover) cannot start writing transactions of its own between replayed ones.
    """
    return scratch_spec(settings, folder / "primary", role="replica", server_id=1, port=port)


def new_restore_folder(base: Path) -> Path:
    """`base/<UTC time>`, with `-2`, `-3`... when that second's name is taken: a restore that
    was declined (`--replace` asks after restoring) keeps its folder for inspection, and the
    next one may start within the same second."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    candidate, number = base / stamp, 1
    while candidate.exists():
        number += 1
        candidate = base / f"{stamp}-{number}"
    return candidate


def restore(
    settings: Settings,
    *,
    to_time: datetime | None = None,
    to_gtid: str | None = None,
    folder: Path | None = None,
    progress: Progress = _quiet,
) -> RestoreResult:
    """Restore into a new folder (see module docstring); the restored server keeps running."""
    folder = (folder or new_restore_folder(settings.state_dir / "restores")).expanduser().resolve()
    for running in (settings.state_dir / "primary", settings.state_dir / "replica"):
        if folder == running or running in folder.parents or folder in running.parents:
            raise RestoreRefused(
                f"{folder} overlaps the cluster's {running}: choose another folder"
            )
    if folder.exists() and any(folder.iterdir()):
        raise RestoreRefused(f"{folder} exists and is not empty: choose a new folder")
    plan = plan_restore(settings, to_time=to_time, to_gtid=to_gtid)
    external = external_scratch(settings)
    if external is not None:
        return _restore_into_external(settings, plan, external, folder, progress)
    spec = restore_folder_spec(settings, folder)
    progress(f"unpacking backup {plan.backup.id} (GTID {plan.backup.manifest.gtid}) into {folder}")
    began = time.monotonic()
    password = settings.mysql_root_password.get_secret_value()
    manifest = plan.backup.manifest
    flavour = detect_flavour(manifest.server_version)
    if manifest.method == LOGICAL:
        server, _ = start_logical_copy(settings, plan.backup, spec, root_password=password)
    else:
        unpack_backup(plan.backup.folder, manifest, spec.datadir)
        server = start_restored(settings, spec)
    unpacked = time.monotonic()
    try:
        gtid = _replay_plan(
            plan,
            flavour=flavour,
            client={"user": "root", "password": password, "socket": spec.socket},
            target=spec,
            folder=folder,
            progress=progress,
        )
    except BaseException:
        server.stop(root_password=password)
        raise
    result = RestoreResult(
        folder=folder,
        port=spec.port,
        socket=spec.socket,
        gtid=gtid,
        plan=plan,
        unpack_seconds=unpacked - began,
        replay_seconds=time.monotonic() - unpacked,
    )
    write_text_atomic(
        folder / RESTORE_INFO, json.dumps(result.to_dict(), indent=2, default=str) + "\n"
    )
    progress(f"restored to GTID {gtid}; mariadbd runs on 127.0.0.1:{spec.port} ({spec.socket})")
    return result


def restored_server(settings: Settings, folder: Path) -> LocalServer:
    """The server of a restore folder (running or not), from its recorded port."""
    info = json.loads((folder / RESTORE_INFO).read_text())
    if info.get("external"):
        raise RestoreRefused(
            f"{folder} was restored into the external scratch server {info['host']}:"
            f"{info['port']}, which this command does not run: it stays up, and the next "
            "`backup verify` or `restore` empties it"
        )
    spec = restore_folder_spec(settings, folder, port=int(info["port"]))
    return LocalServer(
        spec,
        mariadbd=find_binary(settings.mariadbd_path),
        install_db=find_binary(settings.install_db_path),
    )


def stop_restored(settings: Settings, folder: Path) -> bool:
    """Stop the server of a restore folder; True if it was running."""
    try:
        return restored_server(settings, folder).stop(
            root_password=settings.mysql_root_password.get_secret_value()
        )
    except FileNotFoundError:
        raise RestoreRefused(f"{folder} is not a restore folder (no {RESTORE_INFO})") from None
