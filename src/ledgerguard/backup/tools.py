"""The Debian programs backups use, and the option files that keep passwords off command lines.

`mariadb-backup` (package `mariadb-backup`) copies InnoDB hot; `mariadb-binlog` (package
`mariadb-client`) streams binlogs and replays them; `mariadb` (`mariadb-client-core`) executes
the replayed SQL; `zstd` compresses. Passwords go into a mode-0600 option file passed as
`--defaults-file` (first argument), never on a command line or in the environment.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from ledgerguard.backup.errors import BackupError, ToolNotFound
from ledgerguard.files import write_text_atomic
from ledgerguard.processes import find_program
from ledgerguard.settings import Settings

PACKAGE_OF = {
    "mariadb-backup": "mariadb-backup",
    "mariadb-binlog": "mariadb-client",
    "mariadb": "mariadb-client-core",
    "zstd": "zstd",
}


def find_tool(name: str) -> str:
    """Absolute path of `name`, or `ToolNotFound` naming the Debian package to install."""
    return find_program(name, packages=PACKAGE_OF, error=ToolNotFound)


def backup_login(settings: Settings) -> dict[str, str]:
    """`user` and `password` of the backup account (see `ledgerguard.cluster.provision`): what
    backups, verify and the archiver log in with, so none of them needs root's secret."""
    return {"user": settings.backup_user, "password": settings.backup_password.get_secret_value()}


def write_option_file(path: Path, group: str, options: dict[str, str | int]) -> Path:
    """A `[group]` option file readable by its owner only (it holds a password)."""
    lines = [f"[{group}]"] + [f"{key} = {value}" for key, value in options.items()]
    return write_text_atomic(path, "\n".join(lines) + "\n", mode=0o600)


def tool_environment() -> dict[str, str]:
    """What the tools run with: PATH, UTC and the C locale, none of the caller's secrets."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TZ": "UTC", "LANG": "C"}


def run_tool(argv: list[str], *, what: str, log_file: Path | None = None) -> str:
    """Run a program to completion; `BackupError` with the end of its output when it fails.

    The output is appended to `log_file` when given (mariadb-backup is verbose), and returned.
    """
    result = subprocess.run(argv, capture_output=True, text=True, env=tool_environment())
    output = result.stdout + result.stderr
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("a") as log:
            log.write(f"$ {' '.join(argv)}\n{output}\n")
    if result.returncode != 0:
        tail = "\n".join(output.splitlines()[-15:])
        raise BackupError(f"{what} failed (exit code {result.returncode}):\n{tail}")
    return output
