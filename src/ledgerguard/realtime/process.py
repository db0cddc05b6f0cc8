"""Running the scorer in the background: `ledgerguard up` / `down` / `status`.

Like every other program the platform starts (`ledgerguard.processes`): its own session, its
pid file and log under the state directory (`scorer/scorer-K-of-N.pid|.log`), a bounded stop
(SIGTERM: the scorer finishes its batch and commits; SIGKILL after the timeout, which the
checkpoint makes safe too).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ledgerguard.processes import (
    StartFailed,
    pid_from_file,
    spawn_detached,
    stop_group,
    wait_ready,
)
from ledgerguard.realtime.errors import ScorerError
from ledgerguard.realtime.partition import Partition
from ledgerguard.realtime.status import read_status, status_file
from ledgerguard.settings import Settings, without_secrets

#: The secrets the scorer is given (least secrets): the replication account streams the
#: replica's binlog, `app_user` rebuilds the state from the replica, the API account writes
#: verdicts and checkpoints to the primary. Root, migrations, monitoring and backups stay out.
SCORER_SECRETS = ("repl_password", "replica_password", "api_db_password")


def paths(settings: Settings, partition: Partition) -> tuple[Path, Path]:
    """(pid file, log file) of one partition's scorer."""
    base = settings.state_dir / "scorer"
    stem = f"scorer-{partition.index}-of-{partition.count}"
    return base / f"{stem}.pid", base / f"{stem}.log"


def started_partitions(settings: Settings) -> list[Partition]:
    """Partitions that have a pid file (started at least once), in order."""
    found = []
    for pid_file in sorted((settings.state_dir / "scorer").glob("scorer-*-of-*.pid")):
        index, _, count = pid_file.stem.removeprefix("scorer-").partition("-of-")
        if index.isdigit() and count.isdigit():
            found.append(Partition(int(index), int(count)))
    return found


def _is_scorer(cmdline: bytes) -> bool:
    return b"scorer" in cmdline


def running_pid(settings: Settings, partition: Partition = Partition()) -> int | None:
    pid_file, _ = paths(settings, partition)
    return pid_from_file(pid_file, runs=_is_scorer)


def start_scorer(
    settings: Settings,
    partition: Partition = Partition(),
    *,
    timeout: float = 120.0,
    rebuild: bool = False,
) -> bool:
    """Start the scorer detached; True if started, False if already running.

    Returns once it streams (its status file says it is connected), so `ledgerguard up` reports a
    scorer that works, not one that is still rebuilding or has already died.
    """
    if running_pid(settings, partition) is not None:
        return False
    pid_file, log_file = paths(settings, partition)
    status_file(settings, partition).unlink(missing_ok=True)
    program = Path(sys.executable).with_name("ledgerguard")
    argv = [str(program), "scorer", "--partition", partition.name]
    if rebuild:
        argv.append("--rebuild")
    env = without_secrets(os.environ) | settings.to_env(secrets=SCORER_SECRETS)
    process = spawn_detached(argv, log_file=log_file, env=env)
    pid_file.write_text(str(process.pid))
    try:
        wait_ready(
            process,
            answers=lambda: bool((read_status(settings, partition) or {}).get("connected")),
            timeout=timeout,
            name="the scorer",
            log_file=log_file,
            poll=0.2,
        )
    except StartFailed as exc:
        raise ScorerError(str(exc)) from None
    return True


def stop_scorer(
    settings: Settings, partition: Partition = Partition(), *, timeout: float = 15.0
) -> bool:
    """SIGTERM (finish the batch, commit), SIGKILL after `timeout`; False if not running."""
    pid = running_pid(settings, partition)
    if pid is None:
        return False
    stop_group(pid, timeout=timeout)
    return True
