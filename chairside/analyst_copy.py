"""The analysts' copy of the marts: a separate DuckDB file any client can open while syncs and
builds keep running.

DuckDB lets one process write a database file, and the warehouse's writer is dbt. So after
every build the writer's process (the dbt asset, in the ``duckdb_writer`` pool) copies the
published schemas into a new file and renames it over the old one: a reader sees the whole
previous copy or the whole new one, and a reader already connected keeps reading the file it
opened (the rename never touches an open file).
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

# What analysts get: the marts, and the locations they are reported by.
PUBLISHED_SCHEMAS = ("marts",)
PUBLISHED_TABLES = (("intermediate", "int_org_locations"),)


def publish(warehouse: Path, copy: Path) -> dict[str, int]:
    """Copy the published tables of ``warehouse`` to ``copy`` atomically; rows per table."""
    copy.parent.mkdir(parents=True, exist_ok=True)
    tmp = copy.with_name(f".{copy.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    rows: dict[str, int] = {}
    try:
        with duckdb.connect(str(tmp)) as con:
            con.execute("attach ? as live (read_only)", [str(warehouse)])
            tables = con.execute(
                "select schema_name, table_name from duckdb_tables() where database_name = 'live'"
            ).fetchall()
            wanted = [
                (schema, table)
                for schema, table in tables
                if schema in PUBLISHED_SCHEMAS or (schema, table) in PUBLISHED_TABLES
            ]
            for schema in sorted({schema for schema, _ in wanted}):
                con.execute(f'create schema "{schema}"')
            for schema, table in wanted:
                name = f'"{schema}"."{table}"'
                con.execute(f"create table {name} as from live.{name}")
                count = con.execute(f"select count(*) from {name}").fetchall()[0][0]
                rows[f"{schema}.{table}"] = count
            con.execute("detach live")
            con.execute("checkpoint")
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, copy)
    finally:
        tmp.unlink(missing_ok=True)
        tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)
    return rows
