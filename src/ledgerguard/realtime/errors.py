"""Exceptions of the streaming scorer; messages say how to fix the problem."""

from __future__ import annotations

from ledgerguard.errors import LedgerGuardError


class ScorerError(LedgerGuardError):
    """The scorer cannot start or go on (configuration, replica, checkpoint)."""


class CheckpointPurged(ScorerError):
    """The replica's binlog no longer holds the checkpoint position."""
