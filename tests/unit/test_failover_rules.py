"""The failover safety rule read from the old primary's error log."""

from __future__ import annotations

from pathlib import Path

from ledgerguard.cluster.failover import semi_sync_was_on_at_crash

READY = "2026-11-28  3:00:00 0 [Note] /usr/sbin/mariadbd: ready for connections."
ON = "2026-11-28  3:00:01 1 [Note] Semi-sync replication switched ON with slave (server_id: 2)"
OFF = "2026-11-28  3:00:02 8 [Note] Semi-sync replication switched OFF."


def test_last_switch_of_the_last_run_counts(tmp_path: Path):
    log = tmp_path / "error.log"
    log.write_text("\n".join([READY, ON, OFF, ON]))
    assert semi_sync_was_on_at_crash(log) is True
    log.write_text("\n".join([READY, ON, OFF]))
    assert semi_sync_was_on_at_crash(log) is False
    # an earlier run's OFF does not count after a restart
    log.write_text("\n".join([READY, ON, OFF, READY]))
    assert semi_sync_was_on_at_crash(log) is None
    assert semi_sync_was_on_at_crash(tmp_path / "missing.log") is None
