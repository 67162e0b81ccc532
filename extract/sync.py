"""The sync engine shared by every connector: pages in, durable batches out, cursor last.

A connector supplies a page source (how to ask its API for the next page, and what token says
where to continue) and a contract per record type. The engine buffers pages into batches,
splits each batch into landed and quarantined records, writes the batch durably, then
checkpoints; the cursor moves only when the run completes. See ``extract.state`` for why this
order makes crashes and failures safe.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol

from extract.landing import BatchMeta, LandedRecord, Landing, QuarantinedRecord
from extract.state import Run, SyncState

log = logging.getLogger("chairside.extract.sync")

Mode = Literal["incremental", "full"]


@dataclass
class Page:
    records: list[dict]
    # Where to continue once this page (and everything before it) is durable.
    resume_token: dict
    # The earliest server clock reading seen on this page, in the source's own format.
    server_time: str | None = None


class PageSource(Protocol):
    def pages(self, run: Run) -> Iterator[Page]: ...

    @property
    def requests(self) -> int: ...


@dataclass(frozen=True)
class StreamSpec:
    connection_id: str
    vendor: str
    entity: str
    source_timezone: str
    cursor_field: str | None
    # Returns (key, None) for a record that keeps its contract, else (key or None, reason).
    check: Callable[[dict], tuple[str | None, str | None]]
    batch_rows: int = 5000
    # Also checkpoint after this many pages, however few rows they held: a per-parent crawl
    # (one request per patient at 1 request/s) must not repeat hours of requests after a crash.
    checkpoint_pages: int = 100


@dataclass
class SyncResult:
    connection_id: str
    vendor: str
    entity: str
    mode: str
    load_id: str
    resumed: bool
    rows: int
    quarantined: int
    batches: int
    requests: int
    cursor_before: str | None
    cursor_after: str | None
    seconds: float
    quarantine_reasons: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        resumed = " (resumed)" if self.resumed else ""
        return (
            f"{self.vendor}[{self.connection_id}] {self.entity} {self.mode}{resumed}: "
            f"{self.rows} rows, {self.quarantined} quarantined, {self.batches} batches, "
            f"{self.requests} requests in {self.seconds:.1f}s"
        )


def run_stream(
    spec: StreamSpec,
    source_for: Callable[[Run], PageSource],
    *,
    landing: Landing,
    state: SyncState,
    mode: Mode,
    cursor_value: str | None,
    next_cursor: Callable[[Run], str | None],
) -> SyncResult:
    """Run (or resume) one sync of one stream.

    ``cursor_value`` is the filter a new run reads from; a resumed run keeps its original
    filter so its batches stay consistent. ``next_cursor`` turns the finished run into the
    cursor to commit (or None to leave the cursor as it is).
    """
    started = time.monotonic()
    cursor_before = state.cursor(spec.connection_id, spec.vendor, spec.entity)
    with state.exclusive(spec.connection_id, spec.vendor, spec.entity):
        run = state.open_run(spec.connection_id, spec.vendor, spec.entity, mode, cursor_value)
        if run.resumed:
            log.info(
                "%s[%s] %s: resuming load %s at batch %d",
                spec.vendor,
                spec.connection_id,
                spec.entity,
                run.load_id,
                run.next_batch_seq,
            )
        requests_before = run.requests
        batches = 0
        reasons: dict[str, int] = {}
        source = source_for(run)
        try:
            buffer: list[Page] = []
            for page in source.pages(run):
                buffer.append(page)
                rows = sum(len(p.records) for p in buffer)
                if rows >= spec.batch_rows or len(buffer) >= spec.checkpoint_pages:
                    batches += _flush(spec, run, buffer, landing, state, reasons)
                    run.requests = requests_before + source.requests
                    buffer = []
            run.requests = requests_before + source.requests
            batches += _flush(spec, run, buffer, landing, state, reasons)
            cursor_after = next_cursor(run)
            state.complete(run, cursor_after)
        except BaseException as error:
            run.requests = requests_before + source.requests
            state.fail(run, f"{type(error).__name__}: {error}")
            raise
    result = SyncResult(
        connection_id=spec.connection_id,
        vendor=spec.vendor,
        entity=spec.entity,
        mode=mode,
        load_id=run.load_id,
        resumed=run.resumed,
        rows=run.rows,
        quarantined=run.quarantined,
        batches=batches,
        requests=run.requests,
        cursor_before=cursor_before,
        cursor_after=cursor_after if cursor_after is not None else cursor_before,
        seconds=time.monotonic() - started,
        quarantine_reasons=reasons,
    )
    log.info(result.summary())
    return result


def _flush(
    spec: StreamSpec,
    run: Run,
    pages: list[Page],
    landing: Landing,
    state: SyncState,
    reasons: dict[str, int],
) -> int:
    """Write the buffered pages as one batch, then checkpoint. Returns batches written (0/1)."""
    if not pages:
        return 0
    landed: list[LandedRecord] = []
    quarantined: list[QuarantinedRecord] = []
    for page in pages:
        if page.server_time and (run.watermark is None or page.server_time < run.watermark):
            run.watermark = page.server_time
        for record in page.records:
            key, reason = spec.check(record)
            server_time = record.get("serverDateTime") if isinstance(record, dict) else None
            if reason is None:
                landed.append(LandedRecord(key, record, server_time))
            else:
                raw = record if isinstance(record, dict) else {"_value": record}
                quarantined.append(QuarantinedRecord(key, raw, reason, server_time))
                reasons[reason] = reasons.get(reason, 0) + 1
                log.warning(
                    "%s[%s] %s: quarantined record %s: %s",
                    spec.vendor,
                    spec.connection_id,
                    spec.entity,
                    key,
                    reason,
                )
    written = 0
    if landed or quarantined:
        meta = BatchMeta(
            connection_id=spec.connection_id,
            vendor=spec.vendor,
            entity=spec.entity,
            load_id=run.load_id,
            batch_seq=run.next_batch_seq,
            cursor_field=spec.cursor_field,
            cursor_value=run.cursor_value,
            source_timezone=spec.source_timezone,
            extracted_at=datetime.now(UTC),
        )
        landing.write_batch(meta, landed, quarantined)
        run.next_batch_seq += 1
        run.rows += len(landed)
        run.quarantined += len(quarantined)
        written = 1
    run.resume_token = pages[-1].resume_token
    state.checkpoint(run)
    return written
