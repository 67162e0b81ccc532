"""QuickBooks Online connector: pages through ``/query`` and hands batches to the sync engine.

Auth is OAuth 2 with rotating refresh tokens (``extract.quickbooks.auth``). Paging is by
``STARTPOSITION``; the resume token holds the next position, and a resumed run re-reads one
page behind it so an entity deleted ahead of us cannot shift an unread one into the part we
passed. A body carrying a ``Fault`` fails the request whatever its HTTP status (QBO answers
some failures with 200). See ``streams`` for what is read how.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from chairside.config import QuickBooksConnection
from extract.connectors import Connector
from extract.contracts import contract_violation
from extract.http import ApiClient, ApiError
from extract.landing import Landing
from extract.quickbooks.auth import QuickBooksAuth, TokenClient, TokenStore
from extract.quickbooks.streams import STREAMS, Stream, select
from extract.state import Run, SyncState
from extract.sync import Mode, Page, StreamSpec, SyncResult, run_stream

VENDOR = "quickbooks"
# A full page whose ids were all seen this many times in a row means paging is not advancing.
STUCK_PAGE_LIMIT = 3
UTC_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def open_client(
    connection: QuickBooksConnection,
    landing_root: Path | str,
    transport: httpx.BaseTransport | None = None,
) -> ApiClient:
    store = TokenStore.for_connection(landing_root, connection.id)
    tokens = TokenClient(connection, store, transport=transport)
    return ApiClient.for_connection(
        connection,
        f"{VENDOR}[{connection.id}]",
        connection.base_url,
        {"Accept": "application/json"},
        transport=transport,
        auth=QuickBooksAuth(tokens),
    )


def sync_entity(
    connection: QuickBooksConnection,
    entity: str,
    *,
    landing_root: Path | str,
    mode: Mode = "incremental",
    transport: httpx.BaseTransport | None = None,
) -> SyncResult:
    """Extract one entity of one QuickBooks company into the landing zone."""
    stream = STREAMS[entity]
    landing = Landing(landing_root)
    state = SyncState(landing_root)
    previous = state.cursor(connection.id, VENDOR, entity)
    spec = StreamSpec(
        connection_id=connection.id,
        vendor=VENDOR,
        entity=entity,
        source_timezone=connection.timezone,
        cursor_field="MetaData.LastUpdatedTime" if stream.kind == "stamped" else None,
        check=lambda record: _check(stream, record),
        batch_rows=connection.batch_rows,
    )
    with open_client(connection, landing_root, transport) as client:
        return run_stream(
            spec,
            lambda run: QueryPages(client, stream, connection),
            landing=landing,
            state=state,
            mode=mode,
            cursor_value=_filter_from(stream, connection, previous, mode),
            next_cursor=lambda run: run.watermark if stream.kind == "stamped" else None,
        )


class QueryPages:
    """Yields ``/query`` pages for one run, starting where the run's checkpoint says."""

    def __init__(self, client: ApiClient, stream: Stream, connection: QuickBooksConnection):
        self.client = client
        self.stream = stream
        self.connection = connection
        self.path = f"/v3/company/{connection.realm_id}/query"
        self._requests_at_start = client.requests

    @property
    def requests(self) -> int:
        return self.client.requests - self._requests_at_start

    def pages(self, run: Run) -> Iterator[Page]:
        """Pages from the checkpoint on, each starting at the previous page's last row.

        That row (the anchor) shows whether positions moved while we read: found further in,
        entities were added before it (skip what we have); missing with nothing familiar
        around, some were deleted before it, so unseen rows slid under our position (step
        back a page). Rows already read in this run are not yielded again.
        """
        size = self.connection.page_size
        position = (run.resume_token or {}).get("position", 1)
        position = max(1, position - size)  # re-read one page behind a checkpoint
        seen: set = set()
        anchor = None
        misses = 0
        while True:
            ask = position if anchor is None else max(1, position - 1)
            rows, server_time = self._page(run.cursor_value, ask, size)
            ids = [row.get("Id") if isinstance(row, dict) else None for row in rows]
            slid = anchor is not None and rows and anchor not in ids and not seen.intersection(ids)
            misses = misses + 1 if slid or all(key in seen for key in ids) else 0
            if misses > STUCK_PAGE_LIMIT:
                raise ApiError(self.client.source, self.path, f"paging is not advancing at {ask}")
            if slid:
                position = max(1, ask - size + 1)  # step back and read that stretch again
                continue
            position = ask + len(rows) - (ids.index(anchor) if anchor in ids else 0)
            fresh = [row for row, key in zip(rows, ids, strict=True) if key not in seen]
            seen.update(key for key in ids if key is not None)
            anchor = ids[-1] if ids else anchor
            yield Page(fresh, {"position": position}, server_time)
            if len(rows) < size:
                return

    def _page(self, since: str | None, start: int, size: int) -> tuple[list, str | None]:
        query = select(self.stream, since, start, size)
        params = {"query": query, "minorversion": self.connection.minor_version}
        body = self.client.get_json(self.path, params)
        if isinstance(body, dict) and ("Fault" in body or "fault" in body):
            raise ApiError(self.client.source, self.path, f"Fault in the response: {_fault(body)}")
        answer = body.get("QueryResponse") if isinstance(body, dict) else None
        if not isinstance(answer, dict):
            raise ApiError(self.client.source, self.path, "expected a QueryResponse object")
        rows = answer.get(self.stream.qbo_entity, [])
        if not isinstance(rows, list):
            raise ApiError(self.client.source, self.path, "expected a list of entities")
        return rows, _utc(body.get("time"))


def _fault(body: dict) -> str:
    """The fault's codes and types (QBO's messages name no values)."""
    fault = body.get("Fault") or body.get("fault") or {}
    errors = fault.get("Error") or fault.get("error") or []
    codes = [str(e.get("code")) for e in errors if isinstance(e, dict)]
    return f"type {fault.get('type')}, code {', '.join(codes) or 'unknown'}"[:200]


def _utc(text) -> str | None:
    """The server clock of a response as fixed-format UTC text (so texts compare in order)."""
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(UTC).strftime(UTC_FORMAT)


def _check(stream: Stream, record) -> tuple[str | None, str | None]:
    key = record.get("Id") if isinstance(record, dict) else None
    return (key if isinstance(key, str) else None), contract_violation(stream.contract, record)


def _filter_from(
    stream: Stream, connection: QuickBooksConnection, cursor: str | None, mode: Mode
) -> str | None:
    """``LastUpdatedTime`` to read from: the stored cursor minus the overlap window."""
    if mode == "full" or cursor is None or stream.kind == "snapshot":
        return None
    since = datetime.strptime(cursor, UTC_FORMAT).replace(tzinfo=UTC)
    since -= timedelta(minutes=connection.overlap_minutes)
    return since.isoformat(timespec="seconds")


CONNECTOR = Connector(
    vendor=VENDOR,
    entities={
        entity: f"QuickBooks {stream.qbo_entity} ({stream.kind} sync through /query)"
        for entity, stream in STREAMS.items()
    },
    sync_entity=sync_entity,
)
