"""The recorded topology decides where every engine and the DAGs' connection point."""

from __future__ import annotations

import stat
from pathlib import Path

from ledgerguard.db.engines import migration_url, primary_engine, server_url
from ledgerguard.db.topology import RecordedTopology, load_topology, save_topology, topology_file
from ledgerguard.orchestration.config import replica_connection_uri
from tests.support import make_settings


def test_after_a_failover_every_path_uses_the_promoted_server(tmp_path: Path):
    settings = make_settings(tmp_path)
    assert load_topology(settings) == RecordedTopology(swapped=False, epoch=0)
    assert migration_url(settings).port == settings.primary_port

    save_topology(settings, RecordedTopology(swapped=True, epoch=1))
    assert stat.S_IMODE(topology_file(settings).stat().st_mode) == 0o600
    assert load_topology(settings).epoch == 1
    # migrations, API keys, imports: the promoted server; the DAGs' reads: the old primary
    assert migration_url(settings).port == settings.replica_port
    user = settings.api_db_user
    assert server_url(settings, "primary", user=user, password="x").port == settings.replica_port
    assert f":{settings.primary_port}/" in replica_connection_uri(settings)
    # the API's topology still reaches each configured server by name
    assert primary_engine(settings, node="primary").url.port == settings.primary_port
