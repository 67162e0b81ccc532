"""The outbox: every write Chairside intends to make to a vendor system, and how far it got.

Kept in SQLite outside the rebuildable warehouse (like the sync state): a rebuild must never
forget that a payment was already posted. One row per intended write, keyed by an idempotency key
derived from what is written (``write_key``), so planning the same write twice finds the same row
and a retry never mints a new key.

States: ``pending`` (to send), ``sending`` (claimed by a sender; if that sender died the remote
outcome is unknown and the next sender looks the record up before sending again), ``done``
(``remote_id`` says where it landed), ``failed`` (rejected by the vendor or out of attempts;
``last_error`` says why; ops retry or skip it), ``skipped`` (ops decided it must not be written).

Every state change commits in one SQLite transaction together with its audit row (``events``), so
the decision and the outbox row commit together.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

STATES = ("pending", "sending", "done", "failed", "skipped")

_SCHEMA = """
create table if not exists writes (
    key text primary key,              -- idempotency key: write_key(kind, target, source_ref)
    kind text not null,                -- pms_payment | appointment_confirm | ... | qbo_deposit
    target text not null,              -- connection id the write goes to
    source_ref text not null,          -- what it is written from (charge id, payout id, ...)
    payload text not null,             -- JSON body fields, vendor-neutral (writeback/writes.py)
    payload_hash text not null,
    state text not null check (state in ('pending','sending','done','failed','skipped')),
    attempts integer not null default 0,
    remote_id text,
    last_error text,
    planned_at text not null,
    due_at text not null,              -- not sent before this (daily writes wait for their run)
    updated_at text not null
);
create index if not exists writes_due on writes (target, state, due_at);
create table if not exists events (
    id integer primary key autoincrement,
    key text not null references writes (key),
    at text not null,
    event text not null,               -- planned | replanned | claimed | found | done | failed
                                       -- | unknown | retry | skip
    detail text,
    actor text not null                -- planner | sender | the operator's name
);
"""


def write_key(kind: str, target: str, source_ref: str) -> str:
    """The idempotency key of a write: a hash of what is written where, never random.

    36 characters at most (QuickBooks accepts a requestid of up to 36 characters in a batch).
    """
    digest = hashlib.sha256(f"{kind}\x1f{target}\x1f{source_ref}".encode()).hexdigest()
    return f"cs-{digest[:32]}"


@dataclass(frozen=True)
class Write:
    """One intended write, as the planner describes it."""

    kind: str
    target: str
    source_ref: str
    payload: dict[str, Any]
    due_at: datetime

    @property
    def key(self) -> str:
        return write_key(self.kind, self.target, self.source_ref)


@dataclass(frozen=True)
class Row:
    """One outbox row as stored."""

    key: str
    kind: str
    target: str
    source_ref: str
    payload: dict[str, Any]
    state: str
    attempts: int
    remote_id: str | None
    last_error: str | None
    planned_at: str
    due_at: str
    updated_at: str


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("outbox times must be timezone-aware")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _payload_json(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)


class Outbox:
    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            con.execute("pragma journal_mode=wal")
            con.execute("pragma synchronous=full")  # a committed state survives a power cut
            con.row_factory = sqlite3.Row
            yield con
        finally:
            con.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as con:
            con.execute("begin immediate")
            try:
                yield con
            except BaseException:
                con.execute("rollback")
                raise
            con.execute("commit")

    @staticmethod
    def _event(con, key: str, event: str, detail: str | None, actor: str) -> None:
        con.execute(
            "insert into events (key, at, event, detail, actor) values (?, ?, ?, ?, ?)",
            (key, _now(), event, detail, actor),
        )

    # -- planning -------------------------------------------------------------------------------

    def plan(self, writes: Iterable[Write]) -> dict[str, int]:
        """Add the writes not planned before, in one transaction. A write already in the outbox
        keeps its state; a pending one whose payload changed (a setting changed before it was
        sent) takes the new payload. Returns counts: planned, replanned, unchanged."""
        counts = {"planned": 0, "replanned": 0, "unchanged": 0}
        now = _now()
        with self._transaction() as con:
            for write in writes:
                body = _payload_json(write.payload)
                digest = hashlib.sha256(body.encode()).hexdigest()
                old = con.execute(
                    "select state, payload_hash from writes where key = ?", (write.key,)
                ).fetchone()
                if old is None:
                    con.execute(
                        "insert into writes (key, kind, target, source_ref, payload, payload_hash,"
                        " state, planned_at, due_at, updated_at)"
                        " values (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
                        (
                            write.key,
                            write.kind,
                            write.target,
                            write.source_ref,
                            body,
                            digest,
                            now,
                            _iso(write.due_at),
                            now,
                        ),
                    )
                    self._event(con, write.key, "planned", None, "planner")
                    counts["planned"] += 1
                elif old["state"] == "pending" and old["payload_hash"] != digest:
                    con.execute(
                        "update writes set payload = ?, payload_hash = ?, due_at = ?,"
                        " updated_at = ? where key = ?",
                        (body, digest, _iso(write.due_at), now, write.key),
                    )
                    self._event(con, write.key, "replanned", None, "planner")
                    counts["replanned"] += 1
                else:
                    counts["unchanged"] += 1
        return counts

    # -- sending (writeback/deliver.py) ----------------------------------------------------------

    def due(self, target: str, now: datetime, limit: int | None = None) -> list[Row]:
        """Rows of ``target`` to work on: pending and due, or left ``sending`` by a sender that
        died (the caller holds the target's sender lock, so no live sender owns them)."""
        sql = (
            "select * from writes where target = ? and"
            " (state = 'sending' or (state = 'pending' and due_at <= ?))"
            " order by due_at, key"
        )
        params: list[Any] = [target, _iso(now)]
        if limit is not None:
            sql += " limit ?"
            params.append(limit)
        with self._connect() as con:
            return [_row(r) for r in con.execute(sql, params).fetchall()]

    def claim(self, keys: list[str]) -> None:
        """Mark rows as being sent, counting the attempt, before anything leaves the machine."""
        now = _now()
        with self._transaction() as con:
            for key in keys:
                con.execute(
                    "update writes set state = 'sending', attempts = attempts + 1,"
                    " updated_at = ? where key = ? and state in ('pending', 'sending')",
                    (now, key),
                )
                self._event(con, key, "claimed", None, "sender")

    def done(self, key: str, remote_id: str, *, found: bool = False) -> None:
        with self._transaction() as con:
            con.execute(
                "update writes set state = 'done', remote_id = ?, last_error = null,"
                " updated_at = ? where key = ?",
                (remote_id, _now(), key),
            )
            self._event(con, key, "found" if found else "done", remote_id, "sender")

    def failed(self, key: str, reason: str) -> None:
        with self._transaction() as con:
            con.execute(
                "update writes set state = 'failed', last_error = ?, updated_at = ? where key = ?",
                (reason, _now(), key),
            )
            self._event(con, key, "failed", reason, "sender")

    def unknown(self, key: str, error: str, *, give_up: bool) -> None:
        """The send may or may not have reached the vendor. The row goes back to pending (or to
        failed when out of attempts); either way the next attempt looks the record up first,
        because ``attempts`` is already counted."""
        state = "failed" if give_up else "pending"
        with self._transaction() as con:
            con.execute(
                "update writes set state = ?, last_error = ?, updated_at = ? where key = ?",
                (state, error, _now(), key),
            )
            self._event(con, key, "unknown", error, "sender")

    # -- operators ------------------------------------------------------------------------------

    def retry(self, keys: Iterable[str], actor: str, reason: str | None = None) -> list[str]:
        """Send failed rows again (after the cause was fixed). Attempts are kept, so the next
        send looks the record up first. Returns the keys that changed."""
        return self._operate(keys, "retry", "pending", ("failed",), actor, reason)

    def skip(self, keys: Iterable[str], actor: str, reason: str | None = None) -> list[str]:
        """Never write these rows (entered by hand, or wrong). Done rows cannot be skipped."""
        return self._operate(keys, "skip", "skipped", ("pending", "failed"), actor, reason)

    def _operate(self, keys, event, state, allowed, actor, reason) -> list[str]:
        if not actor:
            raise ValueError("an operator decision needs the operator's name")
        changed = []
        with self._transaction() as con:
            for key in keys:
                row = con.execute("select state from writes where key = ?", (key,)).fetchone()
                if row is None:
                    raise KeyError(f"no write {key!r} in the outbox {self.path}")
                if row["state"] not in allowed:
                    raise ValueError(
                        f"write {key} is {row['state']}; {event} applies to "
                        f"{' or '.join(allowed)} writes only"
                    )
                con.execute(
                    "update writes set state = ?, updated_at = ? where key = ?",
                    (state, _now(), key),
                )
                self._event(con, key, event, reason, actor)
                changed.append(key)
        return changed

    # -- reading --------------------------------------------------------------------------------

    def rows(self, *, state: str | None = None, target: str | None = None) -> list[Row]:
        sql, params = "select * from writes where 1 = 1", []
        if state:
            sql += " and state = ?"
            params.append(state)
        if target:
            sql += " and target = ?"
            params.append(target)
        with self._connect() as con:
            return [_row(r) for r in con.execute(sql + " order by planned_at, key", params)]

    def get(self, key: str) -> Row | None:
        with self._connect() as con:
            found = con.execute("select * from writes where key = ?", (key,)).fetchone()
        return _row(found) if found else None

    def counts(self) -> dict[str, dict[str, int]]:
        """{kind: {state: n}} for run metadata and logs (ids and counts only, never PHI)."""
        out: dict[str, dict[str, int]] = {}
        with self._connect() as con:
            for kind, state, n in con.execute(
                "select kind, state, count(*) from writes group by 1, 2"
            ):
                out.setdefault(kind, {})[state] = n
        return out

    def events(self, key: str) -> list[dict[str, Any]]:
        with self._connect() as con:
            return [
                dict(r)
                for r in con.execute("select * from events where key = ? order by id", (key,))
            ]


def _row(r: sqlite3.Row) -> Row:
    return Row(
        key=r["key"],
        kind=r["kind"],
        target=r["target"],
        source_ref=r["source_ref"],
        payload=json.loads(r["payload"]),
        state=r["state"],
        attempts=r["attempts"],
        remote_id=r["remote_id"],
        last_error=r["last_error"],
        planned_at=r["planned_at"],
        due_at=r["due_at"],
        updated_at=r["updated_at"],
    )
