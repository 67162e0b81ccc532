"""Open Dental connector: pages through the REST API and hands batches to the sync engine."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import httpx

from chairside.config import OpenDentalConnection, secret
from extract.connectors import Connector
from extract.contracts import contract_violation
from extract.http import ApiClient, ApiError
from extract.landing import Landing
from extract.opendental.streams import STREAMS, Stream
from extract.state import Run, SyncState
from extract.sync import Mode, Page, StreamSpec, SyncResult, run_stream

VENDOR = "opendental"
OD_DATETIME = "%Y-%m-%d %H:%M:%S"
# A full page whose keys were all seen this many times in a row means paging is not advancing.
STUCK_PAGE_LIMIT = 3
# How often the list may move under the reader in one run before we give up on it.
DRIFT_LIMIT = 20


def open_client(
    connection: OpenDentalConnection, transport: httpx.BaseTransport | None = None
) -> ApiClient:
    developer = secret(connection.developer_key_env, purpose=f"{connection.id} developer key")
    customer = secret(connection.customer_key_env, purpose=f"{connection.id} customer key")
    return ApiClient.for_connection(
        connection,
        f"{VENDOR}[{connection.id}]",
        connection.base_url,
        {"Authorization": f"ODFHIR {developer}/{customer}", "Content-Type": "application/json"},
        transport=transport,
    )


def sync_entity(
    connection: OpenDentalConnection,
    entity: str,
    *,
    landing_root: Path | str,
    mode: Mode = "incremental",
    transport: httpx.BaseTransport | None = None,
) -> SyncResult:
    """Extract one entity of one Open Dental office into the landing zone."""
    stream = STREAMS[entity]
    landing = Landing(landing_root)
    state = SyncState(landing_root)
    previous = state.cursor(connection.id, VENDOR, entity)
    spec = StreamSpec(
        connection_id=connection.id,
        vendor=VENDOR,
        entity=entity,
        source_timezone=connection.timezone,
        cursor_field=stream.cursor_param,
        check=lambda record: _check(stream, record),
        batch_rows=connection.batch_rows,
    )
    with open_client(connection, transport) as client:
        return run_stream(
            spec,
            lambda run: OpenDentalPages(client, stream, connection, landing, run),
            landing=landing,
            state=state,
            mode=mode,
            cursor_value=_filter_from(stream, connection, previous, mode),
            next_cursor=lambda run: _next_cursor(stream, run),
        )


class OpenDentalPages:
    """Yields pages for one run, starting where the run's checkpoint says."""

    def __init__(
        self,
        client: ApiClient,
        stream: Stream,
        connection: OpenDentalConnection,
        landing: Landing,
        run: Run,
    ):
        self.client = client
        self.stream = stream
        self.connection = connection
        self.landing = landing
        self.run = run
        self._requests_at_start = client.requests

    @property
    def requests(self) -> int:
        return self.client.requests - self._requests_at_start

    def pages(self, run: Run) -> Iterator[Page]:
        stream = self.stream
        params = dict(stream.params)
        if stream.kind == "children":
            if run.watermark is None:
                # Fix the upper bound of the parents this run covers, so a resumed run covers
                # the same set and the next run starts exactly where this one ends.
                parent_entity = stream.parent[0]
                run.watermark = _latest_extraction(self.landing, parent_entity, self.connection.id)
            if not (stream.entity == "paysplits" and run.mode == "full"):
                yield from self._children_pages(run)
                return
        elif run.cursor_value is not None and stream.cursor_param:
            params[stream.cursor_param] = run.cursor_value
        offset = (run.resume_token or {}).get("offset", 0)
        # Re-read one page behind the checkpoint: a row deleted ahead of us would otherwise
        # shift an unread row into the part we already passed.
        offset = max(0, offset - self.connection.page_size)
        for page, next_offset in self._paged(params, offset):
            # Children streams measure progress by parent landings, not by the server clock.
            server_time = None if stream.kind == "children" else _min_server_time(page)
            yield Page(page, {"offset": next_offset}, server_time)

    def _paged(self, params: dict, offset: int) -> Iterator[tuple[list[dict], int]]:
        """Offset pages, each starting one row early, on the previous page's last row.

        Open Dental pages by offset with no cursor. Rows inserted ahead of the reader only
        repeat rows (staging dedupes them), but rows deleted ahead slide unread rows behind
        the reader. That one repeated row (the anchor) shows whether the list moved: when it
        is missing, the span behind is read again, so nothing is skipped.
        """
        size = self.connection.page_size
        key = self.stream.key
        anchor = None
        seen: set = set()
        stuck = drifts = 0
        while True:
            start = offset - 1 if anchor is not None else offset
            rows = self.client.get_json(
                self.stream.path, {**params, "Offset": start, "Limit": size}
            )
            if not isinstance(rows, list):
                raise ApiError(self.client.source, self.stream.path, "expected a JSON list of rows")
            keys = [row.get(key) if isinstance(row, dict) else None for row in rows]
            if anchor is not None and anchor not in keys:
                drifts += 1
                if drifts > DRIFT_LIMIT:
                    raise ApiError(
                        self.client.source,
                        self.stream.path,
                        f"the list keeps shifting under the reader at Offset={start}",
                    )
                offset, anchor = max(0, offset - size), None
                continue
            fresh = rows[keys.index(anchor) + 1 :] if anchor is not None else rows
            fresh_keys = set(keys[len(rows) - len(fresh) :])
            stuck = stuck + 1 if len(rows) == size and fresh_keys <= seen else 0
            if stuck >= STUCK_PAGE_LIMIT:
                raise ApiError(
                    self.client.source,
                    self.stream.path,
                    f"paging is not advancing at Offset={start}",
                )
            seen |= fresh_keys
            offset = start + len(rows)
            anchor = keys[-1] if rows else None
            yield fresh, offset
            if len(rows) < size:
                return

    def _children_pages(self, run: Run) -> Iterator[Page]:
        parent_entity, parent_key, param = self.stream.parent
        lower = None if run.mode == "full" else run.cursor_value
        after = (run.resume_token or {}).get("after")
        parents = _parent_keys(
            self.landing,
            parent_entity,
            parent_key,
            self.connection.id,
            lower,
            run.watermark,
            after,
        )
        for parent in parents:
            rows: list[dict] = []
            for page, _ in self._paged({**dict(self.stream.params), param: parent}, 0):
                rows.extend(page)
            yield Page(rows, {"after": parent})


def _check(stream: Stream, record) -> tuple[str | None, str | None]:
    key = record.get(stream.key) if isinstance(record, dict) else None
    key_text = None if key is None else str(key)
    return key_text, contract_violation(stream.contract, record)


def _filter_from(
    stream: Stream, connection: OpenDentalConnection, cursor: str | None, mode: Mode
) -> str | None:
    """The filter value for a new run: the stored cursor minus the overlap window."""
    if mode == "full" or cursor is None:
        return None
    if stream.kind == "stamped":
        cursor_at = datetime.strptime(cursor, OD_DATETIME)
        overlap = timedelta(minutes=connection.overlap_minutes)
        since = cursor_at - overlap - dst_fallback_since(cursor_at, connection.timezone)
        return since.strftime(OD_DATETIME)
    if stream.kind == "dated":
        since = datetime.strptime(cursor, "%Y-%m-%d") - timedelta(
            days=connection.payments_overlap_days
        )
        return since.strftime("%Y-%m-%d")
    if stream.kind == "children":
        return cursor
    return None


def dst_fallback_since(local: datetime, timezone: str, now: datetime | None = None) -> timedelta:
    """How far the office's clock has been set back since ``local`` (its own wall time).

    Open Dental stamps rows in local time, so when clocks fall back an hour, rows changed in the
    repeated hour get stamps *earlier* than a cursor taken just before the change. Widening the
    window by the fall-back keeps those rows inside it.
    """
    zone = ZoneInfo(timezone)
    then = local.replace(tzinfo=zone).utcoffset()
    current = (now or datetime.now(UTC)).astimezone(zone).utcoffset()
    return max(then - current, timedelta(0))


def _next_cursor(stream: Stream, run: Run) -> str | None:
    if run.watermark is None or stream.kind == "snapshot":
        return None
    if stream.kind == "dated":
        return run.watermark[:10]
    return run.watermark


def _min_server_time(rows: list[dict]) -> str | None:
    times = [r["serverDateTime"] for r in rows if isinstance(r, dict) and r.get("serverDateTime")]
    return min(times) if times else None


def _parent_files(landing: Landing, entity: str, connection_id: str) -> list[str]:
    return [str(p) for p in landing.load_files(VENDOR, entity, connection_id)]


def _latest_extraction(landing: Landing, entity: str, connection_id: str) -> str | None:
    files = _parent_files(landing, entity, connection_id)
    if not files:
        return None
    rows = _query(
        "select strftime(max(_extracted_at) at time zone 'UTC', '%Y-%m-%dT%H:%M:%S.%fZ') "
        "from read_parquet($files)",
        {"files": files},
    )
    return rows[0][0]


def _parent_keys(
    landing: Landing,
    entity: str,
    key_field: str,
    connection_id: str,
    lower: str | None,
    upper: str | None,
    after: int | None,
) -> list[int]:
    """Parent keys landed in (lower, upper], ascending, skipping those done before a resume."""
    files = _parent_files(landing, entity, connection_id)
    if not files or upper is None:
        return []
    rows = _query(
        f"""
        select distinct cast(json_extract_string(_record, '$.{key_field}') as bigint) as k
        from read_parquet($files)
        where _extracted_at <= cast($upper as timestamptz)
          and ($lower is null or _extracted_at > cast($lower as timestamptz))
          and ($after is null or k > $after)
        order by k
        """,
        {"files": files, "upper": upper, "lower": lower, "after": after},
    )
    return [row[0] for row in rows]


def _query(sql: str, params: dict) -> list[tuple]:
    """Read landed Parquet with a private in-memory DuckDB: no warehouse lock involved."""
    with duckdb.connect() as con:
        return con.execute(sql, params).fetchall()


CONNECTOR = Connector(
    vendor=VENDOR,
    entities={
        entity: f"Open Dental {entity} ({stream.kind} sync of GET {stream.path})"
        for entity, stream in STREAMS.items()
    },
    sync_entity=sync_entity,
    parents={entity: s.parent[0] for entity, s in STREAMS.items() if s.parent},
)
