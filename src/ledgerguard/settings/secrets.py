"""The secrets policy of the settings: which fields are secrets, which values are refused, and
what a process that was not given a secret sees instead.

Apart from `Settings` (in `ledgerguard.settings`) because it is policy about the values, not
configuration: the dev passwords that `.env.example` ships and only development accepts, the
minimum length in production, and the placeholder (`WITHHELD`) that a child process receives
for every secret it was not given, which fails loudly when used (`SecretWithheld`) instead of
connecting with a wrong password.
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, Field, SecretStr

from ledgerguard.errors import LedgerGuardError

#: Passwords shipped in `.env.example` (and the original design's README). Fine on a laptop, refused
#: when `LEDGERGUARD_ENVIRONMENT` is not `development`.
DEV_PASSWORDS = frozenset(
    {
        "rootpassword",
        "AppPass123!",
        "ReplicaPass123!",
        "ApiPass123!",
        "MigratePass123!",
        "MonitorPass123!",
        "BackupPass123!",
        "ScratchPass123!",
        "admin",
        "airflow",
        "changeme",
    }
)


#: Every secret field (checked outside development, withheld from processes that do not need it).
SECRET_FIELDS = (
    "mysql_root_password",
    "replica_password",
    "repl_password",
    "api_db_password",
    "migrate_password",
    "monitor_password",
    "backup_password",
    "backup_scratch_password",
    "airflow_admin_password",
    "grafana_admin_password",
)
#: Shortest secret accepted outside development.
MIN_SECRET_LENGTH = 12
#: What a withheld secret's variable holds in a child process (see `Settings.to_env`).
WITHHELD = "<withheld>"


class SecretWithheld(LedgerGuardError):
    """This process was started without a secret it now needs."""


class WithheldSecret(SecretStr):
    """A secret this process was deliberately not given: using it fails with a clear message."""

    def __init__(self, name: str) -> None:
        super().__init__(WITHHELD)
        self.name = name

    def get_secret_value(self) -> str:
        raise SecretWithheld(
            f"{self.name} is not given to this process (each process gets only its own "
            "account's secret); run this from the `ledgerguard` command line instead"
        )


def secret_field(*names: str) -> Any:
    """A required secret readable under each of `names` (original name first)."""
    return Field(validation_alias=AliasChoices(*names))
