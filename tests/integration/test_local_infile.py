"""`LOAD DATA LOCAL` sends only the file the importer named (real primary).

A real server reads the path from the statement, so a statement naming another file than the
one allowed is exactly what a server asking for another file looks like to the client.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from ledgerguard.cluster.local import LocalCluster
from ledgerguard.db.engines import bulk_load_engine
from ledgerguard.db.local_infile import LocalFileRefused
from ledgerguard.fraud.imports.bulk_load import ChunkLoader
from ledgerguard.fraud.imports.check import DB_COLUMNS
from ledgerguard.settings import Settings

STATEMENT = (
    "LOAD DATA LOCAL INFILE %s INTO TABLE transactions CHARACTER SET utf8mb4 "
    f"({', '.join(DB_COLUMNS)})"
)


def _row(external_id: str) -> str:
    return (
        "\t".join(
            [
                external_id,
                "1",
                "\\N",
                "1.00",
                "USD",
                "1.00",
                "2025-01-01 00:00:00",
                "2025-01-01 00:00:00",
            ]
        )
        + "\n"
    )


def _count(cursor, external_id: str) -> int:
    cursor.execute("SELECT COUNT(*) FROM transactions WHERE external_id = %s", (external_id,))
    return cursor.fetchone()[0]


def test_a_server_asking_for_another_file_is_refused(
    healthy_cluster: LocalCluster, settings: Settings, tmp_path: Path
):
    leaked = f"leaked-{uuid.uuid4().hex[:12]}"
    named, secret = tmp_path / "named.tsv", tmp_path / "secret.tsv"
    named.write_text(_row(f"named-{uuid.uuid4().hex[:12]}"))
    secret.write_text(_row(leaked))
    engine = bulk_load_engine(settings)
    raw = engine.raw_connection()
    try:
        driver = raw.driver_connection
        with driver.allow_local_file(named), raw.cursor() as cursor:
            with pytest.raises(LocalFileRefused, match=r"secret\.tsv") as info:
                cursor.execute(STATEMENT, (str(secret),))
            assert str(named) in str(info.value)
            assert _count(cursor, leaked) == 0  # nothing sent, and the connection still works
        with raw.cursor() as cursor:  # outside any allowance: refused too
            with pytest.raises(LocalFileRefused, match="no local file was named"):
                cursor.execute(STATEMENT, (str(secret),))
            with driver.allow_local_file(secret) as path:  # the named file itself is sent
                cursor.execute(STATEMENT, (path,))
            assert _count(cursor, leaked) == 1
        raw.rollback()
    finally:
        raw.close()
        engine.dispose()


def test_the_chunk_loader_sends_its_own_chunk_file(
    healthy_cluster: LocalCluster, settings: Settings, tmp_path: Path
):
    """The confined connection still loads the file the loader names (LOAD DATA, no fall-back)."""
    chunk = tmp_path / "chunk.tsv"
    chunk.write_text(_row(f"chunk-{uuid.uuid4().hex[:12]}"))
    engine = bulk_load_engine(settings)
    try:
        with ChunkLoader(engine, "transactions", DB_COLUMNS, "auto") as loader:
            assert loader.load(chunk) == 1
            loader._connection.rollback()
    finally:
        engine.dispose()
