"""Deliver outbox rows to one vendor system, exactly once whatever fails and whenever.

The protocol per batch of due rows:
1. claim them (state ``sending``, attempt counted) and commit, before anything is sent;
2. rows that were attempted before may already exist remotely (a timeout after the vendor
   committed, or a sender killed between sending and recording): look them up, and record the
   ones found as done without sending;
3. send the rest with their idempotency key (the vendor's native mechanism where it has one,
   a marker the lookup can find where it has none);
4. record each outcome: done with the remote id, failed with the vendor's reason (a rejection
   cannot succeed on retry), or unknown (back to pending; step 2 settles it next time).

One sender per target at a time (an exclusive file lock the kernel drops when its holder dies),
so a row found ``sending`` belongs to a sender that is gone.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from extract.http import ApiClient
from writeback.outbox import Outbox, Row

log = logging.getLogger(__name__)

# CHAIRSIDE_CRASH_AT=<point>:<n> kills the sender (os._exit) the n-th time it reaches <point>:
# how the crash-injection tests stop a real sender process at every step boundary.
CRASH_ENV = "CHAIRSIDE_CRASH_AT"
CRASH_POINTS = ("claimed", "looked_up", "sent", "recorded")
_crash_hits: dict[str, int] = {}


def crash_point(name: str) -> None:
    spec = os.environ.get(CRASH_ENV)
    if not spec:
        return
    point, _, nth = spec.partition(":")
    if point != name:
        return
    _crash_hits[name] = _crash_hits.get(name, 0) + 1
    if _crash_hits[name] == int(nth or 1):
        os._exit(137)


class Rejected(Exception):
    """The vendor refused the write (validation, unknown patient, closed period...): sending it
    again unchanged cannot succeed. The message is the reason ops read; never PHI."""


@dataclass(frozen=True)
class Sent:
    remote_id: str


@dataclass(frozen=True)
class Failed:
    reason: str


@dataclass(frozen=True)
class Unknown:
    error: str


Outcome = Sent | Failed | Unknown


class Destination(Protocol):
    """One vendor connection's write side (writeback/<vendor>.py)."""

    target: str  # the connection id
    batch_size: int  # rows per send() call (1 unless the API has a batch endpoint)

    def lookup(self, rows: list[Row]) -> dict[str, str]:
        """Remote ids of the rows that already exist remotely, by key (absent = not found)."""
        ...

    def send(self, rows: list[Row]) -> dict[str, Outcome]:
        """Send the rows; an outcome per key. Exceptions mean every row's outcome is unknown."""
        ...


class ClientDestination:
    """A destination that owns one ApiClient: usable as a context manager."""

    def __init__(self, target: str, client: ApiClient):
        self.target = target
        self.client = client

    def close(self) -> None:
        self.client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class DeliveryReport:
    target: str
    sent: int = 0
    found: int = 0  # already there (an earlier attempt had reached the vendor)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (key, reason)
    unknown: list[tuple[str, str]] = field(default_factory=list)
    busy: bool = False  # another sender holds this target

    def as_metadata(self) -> dict[str, int]:
        return {
            "sent": self.sent,
            "found_already_written": self.found,
            "failed": len(self.failed),
            "outcome_unknown": len(self.unknown),
        }


class SenderBusy(RuntimeError):
    pass


@contextmanager
def sender_lock(outbox: Outbox, target: str) -> Iterator[None]:
    path = Path(f"{outbox.path}.{target}.lock")
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SenderBusy(f"another sender is writing to {target}") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def deliver(
    outbox: Outbox,
    destination: Destination,
    *,
    now: datetime | None = None,
    max_attempts: int = 5,
    limit: int | None = None,
) -> DeliveryReport:
    """Send every due row of ``destination.target``; see the module docstring."""
    report = DeliveryReport(destination.target)
    try:
        with sender_lock(outbox, destination.target):
            rows = outbox.due(destination.target, now or datetime.now(UTC), limit)
            size = max(1, destination.batch_size)
            for start in range(0, len(rows), size):
                _deliver_batch(
                    outbox, destination, rows[start : start + size], max_attempts, report
                )
    except SenderBusy:
        report.busy = True
        log.warning("writeback %s: another sender holds it; nothing sent", destination.target)
    log.info(
        "writeback %s: %s sent, %s already there, %s failed, %s unknown",
        destination.target,
        report.sent,
        report.found,
        len(report.failed),
        len(report.unknown),
    )
    return report


def _deliver_batch(
    outbox: Outbox, destination: Destination, rows: list[Row], max_attempts: int, report
) -> None:
    outbox.claim([r.key for r in rows])
    crash_point("claimed")
    attempted_before = [r for r in rows if r.attempts > 0]
    found: dict[str, str] = {}
    if attempted_before:
        try:
            found = destination.lookup(attempted_before)
        except Exception as error:  # cannot tell whether they exist: send none of them
            for row in attempted_before:
                _unknown(outbox, row, f"lookup failed: {_reason(error)}", max_attempts, report)
            rows = [r for r in rows if r.attempts == 0]
    crash_point("looked_up")
    for key, remote_id in found.items():
        outbox.done(key, remote_id, found=True)
        report.found += 1
    to_send = [r for r in rows if r.key not in found]
    if not to_send:
        return
    try:
        outcomes = destination.send(to_send)
    except Rejected as error:
        outcomes = {r.key: Failed(str(error)) for r in to_send}
    except Exception as error:
        outcomes = {r.key: Unknown(_reason(error)) for r in to_send}
    crash_point("sent")
    for row in to_send:
        outcome = outcomes.get(row.key, Unknown("no outcome returned for this write"))
        if isinstance(outcome, Sent):
            outbox.done(row.key, outcome.remote_id)
            report.sent += 1
        elif isinstance(outcome, Failed):
            outbox.failed(row.key, outcome.reason)
            report.failed.append((row.key, outcome.reason))
        else:
            _unknown(outbox, row, outcome.error, max_attempts, report)
        crash_point("recorded")


def _unknown(outbox: Outbox, row: Row, error: str, max_attempts: int, report) -> None:
    give_up = row.attempts + 1 >= max_attempts
    if give_up:
        error = f"{error} (gave up after {row.attempts + 1} attempts)"
    outbox.unknown(row.key, error, give_up=give_up)
    (report.failed if give_up else report.unknown).append((row.key, error))


def _reason(error: Exception) -> str:
    text = str(error) or type(error).__name__
    return text if isinstance(error, Rejected) else f"{type(error).__name__}: {text}"
