"""Errors of backups, the binlog archive and restores: each message names the fix."""

from ledgerguard.errors import LedgerGuardError


class BackupError(LedgerGuardError):
    """Base class: a backup, archive or restore step failed."""


class ToolNotFound(BackupError):
    """A Debian program (`mariadb-backup`, `mariadb-binlog`, `zstd`) is not installed."""


class BackupCorrupt(BackupError):
    """A backup file is missing, truncated or does not match its manifest checksum."""


class NoBackup(BackupError):
    """No (usable) backup exists for what was asked."""


class OutsideRecoveryWindow(BackupError):
    """The requested restore point is not covered by the backups and the binlog archive."""


class RestoreRefused(BackupError):
    """The restore would touch something it must not (a running cluster or API)."""
