"""Reading a DuckDB file in tests: read-only, closed after each query (so a later build or
another reader is never blocked by a test's open connection)."""

from __future__ import annotations

from pathlib import Path

import duckdb


def query(database: Path, sql: str, params=None) -> list[tuple]:
    with duckdb.connect(str(database), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def rows(database: Path, sql: str) -> list[dict]:
    with duckdb.connect(str(database), read_only=True) as con:
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
