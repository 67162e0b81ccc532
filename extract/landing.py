"""The landing zone: every extracted batch stored untouched as an immutable Parquet file.

Layout under the landing root::

    {vendor}/{entity}/_empty.parquet                                   zero-row schema file
    {vendor}/{entity}/{connection_id}/{load_id}/part-{seq:06d}.parquet  one extracted batch
    _quarantine/_empty.parquet
    _quarantine/{vendor}/{entity}/{connection_id}/{load_id}/part-{seq:06d}.parquet

Why Parquet files and not DuckDB tables: extraction of many offices runs concurrently and must not
wait for (or hold) DuckDB's single write lock; files are immutable, so dbt, analysts and a future
distributed engine can all read them; and a batch becomes visible in one atomic rename, so a crash
never leaves half a batch. Each record is kept as the exact JSON object the API returned
(``_record``) next to the load metadata, so schema drift never loses a field.

A batch file's name is deterministic (load id + sequence number): a resumed extraction that
re-writes a batch replaces the file instead of duplicating it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

LANDING_SCHEMA = pa.schema(
    [
        ("_connection_id", pa.string()),
        ("_vendor", pa.string()),
        ("_entity", pa.string()),
        ("_load_id", pa.string()),
        ("_batch_seq", pa.int32()),
        ("_row_seq", pa.int32()),
        ("_extracted_at", pa.timestamp("us", tz="UTC")),
        ("_cursor_field", pa.string()),
        ("_cursor_value", pa.string()),
        ("_server_time", pa.string()),
        ("_source_timezone", pa.string()),
        ("_record_key", pa.string()),
        ("_record", pa.string()),
    ]
)
QUARANTINE_SCHEMA = LANDING_SCHEMA.append(pa.field("_reason", pa.string()))


@dataclass(frozen=True)
class BatchMeta:
    """Load metadata shared by every record of one batch."""

    connection_id: str
    vendor: str
    entity: str
    load_id: str
    batch_seq: int
    cursor_field: str | None
    cursor_value: str | None
    source_timezone: str
    extracted_at: datetime


@dataclass(frozen=True)
class LandedRecord:
    key: str
    record: dict
    server_time: str | None = None


@dataclass(frozen=True)
class QuarantinedRecord:
    key: str | None
    record: dict
    reason: str
    server_time: str | None = None


def new_load_id(now: datetime | None = None) -> str:
    """Sortable, unique id of one extraction run: UTC time plus random suffix."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%S%fZ}-{os.urandom(4).hex()}"


class Landing:
    def __init__(self, root: Path | str):
        self.root = Path(root)

    def entity_dir(self, vendor: str, entity: str) -> Path:
        return self.root / vendor / entity

    def ensure_entity(self, vendor: str, entity: str) -> None:
        """Create the zero-row schema file so readers' globs match even before the first load."""
        _ensure_empty(self.entity_dir(vendor, entity) / "_empty.parquet", LANDING_SCHEMA)
        _ensure_empty(self.root / "_quarantine" / "_empty.parquet", QUARANTINE_SCHEMA)

    def batch_path(self, meta: BatchMeta, *, quarantine: bool = False) -> Path:
        base = self.root / "_quarantine" if quarantine else self.root
        return (
            base
            / meta.vendor
            / meta.entity
            / meta.connection_id
            / meta.load_id
            / f"part-{meta.batch_seq:06d}.parquet"
        )

    def write_batch(
        self,
        meta: BatchMeta,
        records: Sequence[LandedRecord],
        quarantined: Sequence[QuarantinedRecord] = (),
    ) -> None:
        """Durably write one batch (and its quarantined records) before anyone may rely on it.

        The quarantine file is written first: if we crash between the two, the re-run rewrites both
        under the same names, so nothing is duplicated and no rejected record goes unreported.
        """
        self.ensure_entity(meta.vendor, meta.entity)
        if quarantined:
            rows = [
                _row(meta, i, q.key, q.record, q.server_time) for i, q in enumerate(quarantined)
            ]
            for row, q in zip(rows, quarantined, strict=True):
                row["_reason"] = q.reason
            write_table_atomically(self.batch_path(meta, quarantine=True), rows, QUARANTINE_SCHEMA)
        if records:
            rows = [_row(meta, i, r.key, r.record, r.server_time) for i, r in enumerate(records)]
            write_table_atomically(self.batch_path(meta), rows, LANDING_SCHEMA)

    def load_files(self, vendor: str, entity: str, connection_id: str) -> Iterable[Path]:
        return sorted((self.entity_dir(vendor, entity) / connection_id).glob("*/part-*.parquet"))


def _row(meta: BatchMeta, row_seq: int, key, record: dict, server_time) -> dict:
    return {
        "_connection_id": meta.connection_id,
        "_vendor": meta.vendor,
        "_entity": meta.entity,
        "_load_id": meta.load_id,
        "_batch_seq": meta.batch_seq,
        "_row_seq": row_seq,
        "_extracted_at": meta.extracted_at,
        "_cursor_field": meta.cursor_field,
        "_cursor_value": meta.cursor_value,
        "_server_time": server_time,
        "_source_timezone": meta.source_timezone,
        "_record_key": key,
        "_record": orjson.dumps(record).decode(),
    }


def _ensure_empty(path: Path, schema: pa.Schema) -> None:
    if not path.exists():
        write_table_atomically(path, [], schema)


def write_table_atomically(path: Path, rows: list[dict], schema: pa.Schema) -> None:
    """Write to a temporary name, fsync, then rename: readers see all of the file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Unique per writer: two threads or processes may write the same (idempotent) file at once.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    table = pa.Table.from_pylist(rows, schema=schema)
    pq.write_table(table, tmp, compression="zstd")
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
