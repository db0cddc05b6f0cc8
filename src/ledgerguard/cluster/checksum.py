"""Compare the application tables on primary and replica, chunk by chunk.

Why not `pt-table-checksum`: it works by writing checksum rows on the primary that replicate
(statement-based), which our `binlog_format=ROW` servers and read-only replica do not allow without
changing session binlog formats; it also needs Perl DBI packages. This is the same idea, read-only:

1. for each table, split the primary key range into chunks (`chunk_size` rows) up to the key's
   maximum at the start, so rows inserted during the run are not part of the comparison;
2. for each chunk, compute `COUNT(*)` and `BIT_XOR(CRC32(CONCAT_WS(...all columns...)))` on the
   primary, note the primary's GTID position, wait (bounded) until the replica has applied it, and
   compute the same on the replica;
3. a chunk that differs is re-checked a few times (a row may have been updated between the two
   reads); a difference that persists is reported.

Tables without a single-column integer primary key are compared whole (they are small here).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pymysql

from ledgerguard.cluster.admin import run, scalar
from ledgerguard.cluster.replica import executed_gtids, flavour_of
from ledgerguard.db.dialect import Statement, wait_for_gtid

Connection = pymysql.connections.Connection


@dataclass
class ChunkDiff:
    table: str
    lower: int | None
    upper: int | None
    primary_rows: int
    replica_rows: int


@dataclass
class ChecksumReport:
    tables: dict[str, int] = field(default_factory=dict)  # table -> chunks compared
    rows: int = 0
    differences: list[ChunkDiff] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.differences

    def to_dict(self) -> dict[str, Any]:
        return {
            "clean": self.clean,
            "tables": self.tables,
            "rows": self.rows,
            "differences": [asdict(d) for d in self.differences],
        }


def _ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _table_shape(conn: Connection, schema: str, table: str) -> tuple[list[str], str | None]:
    """(all columns, the single integer primary key column or None)."""
    columns = [
        row["COLUMN_NAME"]
        for row in run(
            conn,
            Statement(
                "SELECT COLUMN_NAME FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
                (schema, table),
            ),
        )
    ]
    keys = run(
        conn,
        Statement(
            "SELECT k.COLUMN_NAME, c.DATA_TYPE FROM information_schema.KEY_COLUMN_USAGE k "
            "JOIN information_schema.COLUMNS c ON c.TABLE_SCHEMA = k.TABLE_SCHEMA "
            "AND c.TABLE_NAME = k.TABLE_NAME AND c.COLUMN_NAME = k.COLUMN_NAME "
            "WHERE k.TABLE_SCHEMA = %s AND k.TABLE_NAME = %s AND k.CONSTRAINT_NAME = 'PRIMARY'",
            (schema, table),
        ),
    )
    integer_types = {"tinyint", "smallint", "mediumint", "int", "bigint"}
    if len(keys) == 1 and keys[0]["DATA_TYPE"] in integer_types:
        return columns, keys[0]["COLUMN_NAME"]
    return columns, None


def _chunk_sql(schema: str, table: str, columns: list[str], key: str | None) -> str:
    # ISNULL() per column keeps NULL and '' apart (CONCAT_WS skips NULLs)
    parts = ", ".join(f"{_ident(c)}, ISNULL({_ident(c)})" for c in columns)
    sql = (
        f"SELECT COUNT(*) AS n, COALESCE(BIT_XOR(CRC32(CONCAT_WS('#', {parts}))), 0) AS crc "
        f"FROM {_ident(schema)}.{_ident(table)}"
    )
    if key is not None:
        sql += f" WHERE {_ident(key)} >= %s AND {_ident(key)} < %s"
    return sql


def _checksum(conn: Connection, sql: str, params: tuple[Any, ...]) -> tuple[int, int]:
    row = run(conn, Statement(sql, params))[0]
    return int(row["n"]), int(row["crc"])


def compare_tables(
    primary: Connection,
    replica: Connection,
    *,
    schema: str,
    chunk_size: int = 10_000,
    wait_timeout: float = 30.0,
    retries: int = 3,
) -> ChecksumReport:
    """Checksum every base table of `schema` on both servers (see module docstring)."""
    flavour = flavour_of(replica)
    report = ChecksumReport()
    tables = [
        row["TABLE_NAME"]
        for row in run(
            primary,
            Statement(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
                "AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
                (schema,),
            ),
        )
    ]
    for table in tables:
        columns, key = _table_shape(primary, schema, table)
        sql = _chunk_sql(schema, table, columns, key)
        if key is None:
            ranges: list[tuple[int | None, int | None]] = [(None, None)]
        else:
            top = scalar(
                primary,
                Statement(f"SELECT MAX({_ident(key)}) FROM {_ident(schema)}.{_ident(table)}"),
            )
            top = int(top or 0)
            ranges = [
                (low, min(low + chunk_size, top + 1)) for low in range(0, top + 1, chunk_size)
            ]
        report.tables[table] = len(ranges)
        for lower, upper in ranges:
            params = () if lower is None else (lower, upper)
            for attempt in range(retries):
                mine = _checksum(primary, sql, params)
                target = executed_gtids(primary)
                step = wait_for_gtid(flavour, target, wait_timeout)
                scalar(replica, step)
                theirs = _checksum(replica, sql, params)
                if mine == theirs or attempt == retries - 1:
                    break
            report.rows += mine[0]
            if mine != theirs:
                report.differences.append(ChunkDiff(table, lower, upper, mine[0], theirs[0]))
    return report
