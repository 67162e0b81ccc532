"""Sync state: cursors and run checkpoints, kept in SQLite beside the landing zone.

The ordering rule that makes extraction safe: a batch file is durable (fsynced and renamed) before
the checkpoint that covers it is committed, and a cursor moves only when its whole run has
completed. A crash at any point therefore leaves either a resumable run (its checkpoint says
where to continue; re-written batches replace their files under the same names) or nothing, and
never a cursor past data that is not stored.

SQLite rather than the DuckDB warehouse: many office extractions run concurrently and must not
hold DuckDB's single write lock; SQLite serialises these tiny writes safely across processes.
"""

from __future__ import annotations

import fcntl
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from extract.landing import new_load_id

_SCHEMA = """
create table if not exists sync_runs (
    load_id text primary key,
    connection_id text not null,
    vendor text not null,
    entity text not null,
    mode text not null,
    status text not null,            -- running | succeeded | failed | abandoned
    cursor_value text,               -- the filter this run reads from
    watermark text,                  -- the cursor this run will commit when it completes
    resume_token text,               -- JSON: where to continue after the last durable batch
    next_batch_seq integer not null default 1,
    rows integer not null default 0,
    quarantined integer not null default 0,
    requests integer not null default 0,
    started_at text not null,
    finished_at text,
    error text
);
create table if not exists cursors (
    connection_id text not null,
    vendor text not null,
    entity text not null,
    cursor_value text not null,
    load_id text not null,
    updated_at text not null,
    primary key (connection_id, vendor, entity)
);
"""


class SyncBusyError(RuntimeError):
    """Another process is already syncing this connection and entity."""


@dataclass
class Run:
    load_id: str
    connection_id: str
    vendor: str
    entity: str
    mode: str
    cursor_value: str | None
    watermark: str | None
    resume_token: dict | None
    next_batch_seq: int
    rows: int
    quarantined: int
    requests: int
    resumed: bool


class SyncState:
    def __init__(self, landing_root: Path | str):
        self.root = Path(landing_root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = self.root / "_state.sqlite"
        # Switching to WAL needs a moment alone with the file: several syncs starting at once
        # would otherwise see "database is locked", so creation is serialised by a file lock.
        with open(self.root / "_state.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            with self._connect() as db:
                db.execute("pragma journal_mode=wal")
                db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("pragma synchronous=full")
            db.row_factory = sqlite3.Row
            yield db
        finally:
            db.close()

    @contextmanager
    def exclusive(self, connection_id: str, vendor: str, entity: str) -> Iterator[None]:
        """Hold a per-stream OS lock for the run; the OS releases it if the process dies."""
        lock_dir = self.root / "_locks"
        lock_dir.mkdir(exist_ok=True)
        with open(lock_dir / f"{vendor}.{connection_id}.{entity}.lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise SyncBusyError(
                    f"{vendor}[{connection_id}] {entity}: another sync is running; try again later"
                ) from None
            yield

    def cursor(self, connection_id: str, vendor: str, entity: str) -> str | None:
        with self._connect() as db:
            row = db.execute(
                "select cursor_value from cursors where connection_id=? and vendor=? and entity=?",
                (connection_id, vendor, entity),
            ).fetchone()
        return row["cursor_value"] if row else None

    def open_run(
        self, connection_id: str, vendor: str, entity: str, mode: str, cursor_value: str | None
    ) -> Run:
        """Resume the unfinished run of this stream and mode if there is one, else start one.

        An unfinished run of the other mode is abandoned: its landed batches stay (they are
        valid data) but its checkpoint no longer applies.
        """
        now = _now()
        with self._connect() as db:
            db.execute("begin immediate")
            unfinished = db.execute(
                "select * from sync_runs where connection_id=? and vendor=? and entity=? "
                "and status in ('running', 'failed') order by started_at desc",
                (connection_id, vendor, entity),
            ).fetchall()
            for row in unfinished:
                if row["mode"] == mode and row is unfinished[0]:
                    db.execute(
                        "update sync_runs set status='running', error=null where load_id=?",
                        (row["load_id"],),
                    )
                    db.execute("commit")
                    return _run_from_row(row, resumed=True)
                db.execute(
                    "update sync_runs set status='abandoned', finished_at=? where load_id=?",
                    (now, row["load_id"]),
                )
            load_id = new_load_id()
            db.execute(
                "insert into sync_runs (load_id, connection_id, vendor, entity, mode, status, "
                "cursor_value, started_at) values (?, ?, ?, ?, ?, 'running', ?, ?)",
                (load_id, connection_id, vendor, entity, mode, cursor_value, now),
            )
            db.execute("commit")
        return Run(
            load_id,
            connection_id,
            vendor,
            entity,
            mode,
            cursor_value,
            None,
            None,
            1,
            0,
            0,
            0,
            resumed=False,
        )

    def checkpoint(self, run: Run) -> None:
        """Record progress after a batch is durable (never before)."""
        with self._connect() as db:
            db.execute(
                "update sync_runs set watermark=?, resume_token=?, next_batch_seq=?, rows=?, "
                "quarantined=?, requests=? where load_id=?",
                (
                    run.watermark,
                    json.dumps(run.resume_token) if run.resume_token is not None else None,
                    run.next_batch_seq,
                    run.rows,
                    run.quarantined,
                    run.requests,
                    run.load_id,
                ),
            )

    def complete(self, run: Run, new_cursor: str | None) -> None:
        """Mark the run done and move the cursor, in one transaction."""
        now = _now()
        with self._connect() as db:
            db.execute("begin immediate")
            db.execute(
                "update sync_runs set status='succeeded', finished_at=?, rows=?, quarantined=?, "
                "requests=?, resume_token=null where load_id=?",
                (now, run.rows, run.quarantined, run.requests, run.load_id),
            )
            if new_cursor is not None:
                db.execute(
                    "insert into cursors values (?, ?, ?, ?, ?, ?) on conflict "
                    "(connection_id, vendor, entity) do update set cursor_value=excluded."
                    "cursor_value, load_id=excluded.load_id, updated_at=excluded.updated_at",
                    (run.connection_id, run.vendor, run.entity, new_cursor, run.load_id, now),
                )
            db.execute("commit")

    def fail(self, run: Run, error: str) -> None:
        with self._connect() as db:
            db.execute(
                "update sync_runs set status='failed', finished_at=?, error=? where load_id=?",
                (_now(), error[:2000], run.load_id),
            )

    def runs(self, connection_id: str | None = None) -> list[dict]:
        with self._connect() as db:
            rows = db.execute(
                "select * from sync_runs where ? is null or connection_id=? order by started_at",
                (connection_id, connection_id),
            ).fetchall()
        return [dict(row) for row in rows]


def _run_from_row(row: sqlite3.Row, *, resumed: bool) -> Run:
    token = row["resume_token"]
    return Run(
        load_id=row["load_id"],
        connection_id=row["connection_id"],
        vendor=row["vendor"],
        entity=row["entity"],
        mode=row["mode"],
        cursor_value=row["cursor_value"],
        watermark=row["watermark"],
        resume_token=json.loads(token) if token else None,
        next_batch_seq=row["next_batch_seq"],
        rows=row["rows"],
        quarantined=row["quarantined"],
        requests=row["requests"],
        resumed=resumed,
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")
