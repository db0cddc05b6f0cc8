"""The one recorded topology: which configured server acts as the primary, and since which epoch.

`LEDGERGUARD_PRIMARY_*` and `LEDGERGUARD_REPLICA_*` name two *servers*; which of them takes writes
is recorded in `<state dir>/topology.json` by `ledgerguard cluster failover`, which swaps the roles
and increments `epoch`. Every path that writes (the API, API keys, imports, migrations) or reads
(the DAGs' freshness check, analytics) resolves its server through `acting_address`, never by
node order or by asking which server happens to be writable: a stale old primary that comes back
writable is never chosen. Without a record (a fresh cluster, Compose) the configured roles hold,
epoch 0.

Lives in `db/` because engines are built here; `ledgerguard.cluster` reads and writes it too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ledgerguard.files import private_dir, write_private
from ledgerguard.settings import Settings

Role = Literal["primary", "replica"]


@dataclass(frozen=True)
class RecordedTopology:
    #: True after an odd number of failovers: the configured replica acts as the primary
    swapped: bool = False
    #: incremented by every failover; the API reports it and follows it
    epoch: int = 0

    def configured_node(self, role: Role) -> Role:
        """Which configured server (`primary`/`replica` settings) plays `role` now."""
        if not self.swapped:
            return role
        return "replica" if role == "primary" else "primary"


def topology_file(settings: Settings) -> Path:
    return settings.state_dir / "topology.json"


def load_topology(settings: Settings) -> RecordedTopology:
    """The recorded topology, or the configured one when nothing was recorded."""
    try:
        data = json.loads(topology_file(settings).read_text())
    except (OSError, ValueError):
        return RecordedTopology()
    return RecordedTopology(
        swapped=bool(data.get("swapped", False)), epoch=int(data.get("epoch", 0))
    )


def save_topology(settings: Settings, topology: RecordedTopology) -> None:
    """Write atomically (rename), the file created 0600 in a 0700 state directory."""
    private_dir(settings.state_dir)
    data = {"swapped": topology.swapped, "epoch": topology.epoch}
    write_private(topology_file(settings), json.dumps(data) + "\n")


def configured_address(settings: Settings, node: Role) -> tuple[str, int]:
    """Host and port of a configured server, whatever role it plays now."""
    if node == "primary":
        return settings.primary_host, settings.primary_port
    return settings.replica_host, settings.replica_port


def acting_address(settings: Settings, role: Role) -> tuple[str, int]:
    """Host and port of the server that plays `role` according to the recorded topology."""
    return configured_address(settings, load_topology(settings).configured_node(role))
