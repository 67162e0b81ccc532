"""The outbox as a table dbt reads (source ``writeback.outbox`` -> mart ``fct_writebacks``).

Written after every planning and sending run, atomically, into the landing zone. Payloads are
left out: the mart says what was written where and how it went, by ids, never with PHI.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from extract.landing import write_table_atomically
from writeback.outbox import Outbox

SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("kind", pa.string()),
        ("target", pa.string()),
        ("source_ref", pa.string()),
        ("state", pa.string()),
        ("attempts", pa.int64()),
        ("remote_id", pa.string()),
        ("last_error", pa.string()),
        ("planned_at", pa.string()),
        ("due_at", pa.string()),
        ("updated_at", pa.string()),
    ]
)


def snapshot_path(landing_root: Path | str) -> Path:
    return Path(landing_root) / "_writeback" / "outbox.parquet"


def export(outbox: Outbox | None, landing_root: Path | str) -> Path:
    """Write the outbox snapshot (an empty table when there is no outbox yet)."""
    rows = [] if outbox is None else outbox.rows()
    records = [{name: getattr(row, name) for name in SCHEMA.names} for row in rows]
    path = snapshot_path(landing_root)
    write_table_atomically(path, records, SCHEMA)
    return path
