"""NexHealth connector: reads one institution location by location into the landing zone.

Paging follows ``page_info.end_cursor`` in id order. The run's resume token is the location and
the ``end_cursor`` after the last durable batch, so a crashed or failed run resumes on the next
page of the same location. A page that claims ``has_next_page`` but brings no rows (or does not
move the cursor) is asked for again from the same cursor, never skipped; after
``STUCK_PAGE_LIMIT`` such answers in a row the run fails.

Incremental cursors are per location (a JSON map ``{location_id: updated_at}``): each location
is its own sync with its own pace. The next cursor of a location is a server clock reading taken
before its pages are read: the newest ``updated_at`` the location has at that moment
(``sort=-updated_at&per_page=1``). NexHealth sends no server time, and this reading comes from
the clock that stamps the rows, so our clock's skew does not matter; any change after it gets a
later stamp, and the next run reads ``updated_since = cursor - overlap_minutes``. We do not use
the largest ``updated_at`` seen while paging: paging runs in id order, so a row changed mid-run
behind the cursor would be missed whenever a later-read row carries a newer stamp.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from chairside.config import NexHealthConnection, secret
from extract.connectors import Connector
from extract.contracts import contract_violation
from extract.http import ApiClient, ApiError
from extract.landing import Landing
from extract.nexhealth.auth import NexHealthAuth
from extract.nexhealth.streams import STREAMS, Stream
from extract.state import Run, SyncState
from extract.sync import Mode, Page, StreamSpec, SyncResult, run_stream

VENDOR = "nexhealth"
STUCK_PAGE_LIMIT = 3


def open_client(
    connection: NexHealthConnection, transport: httpx.BaseTransport | None = None
) -> ApiClient:
    source = f"{VENDOR}[{connection.id}]"
    api_key = secret(connection.api_key_env, purpose=f"{connection.id} API key")
    return ApiClient.for_connection(
        connection,
        source,
        connection.base_url,
        {"Nex-Api-Version": connection.api_version, "Accept": "application/json"},
        transport=transport,
        auth=NexHealthAuth(source, connection.base_url, api_key, connection.api_version),
    )


def sync_entity(
    connection: NexHealthConnection,
    entity: str,
    *,
    landing_root: Path | str,
    mode: Mode = "incremental",
    transport: httpx.BaseTransport | None = None,
) -> SyncResult:
    """Extract one entity of one NexHealth institution into the landing zone."""
    stream = STREAMS[entity]
    landing = Landing(landing_root)
    state = SyncState(landing_root)
    previous = _load_map(state.cursor(connection.id, VENDOR, entity))
    spec = StreamSpec(
        connection_id=connection.id,
        vendor=VENDOR,
        entity=entity,
        source_timezone=connection.timezone,
        cursor_field="updated_at" if stream.kind == "incremental" else None,
        check=lambda record: _check(stream, record),
        batch_rows=connection.batch_rows,
    )
    with open_client(connection, transport) as client:
        return run_stream(
            spec,
            lambda run: NexHealthPages(client, stream, connection, previous),
            landing=landing,
            state=state,
            mode=mode,
            cursor_value=_filter_from(stream, connection, previous, mode),
            next_cursor=lambda run: _next_cursor(stream, previous, run),
        )


class NexHealthPages:
    """Yields pages for one run, starting where the run's resume token says."""

    def __init__(
        self,
        client: ApiClient,
        stream: Stream,
        connection: NexHealthConnection,
        previous: dict[str, str],
    ):
        self.client = client
        self.stream = stream
        self.connection = connection
        self.previous = previous
        self._requests_at_start = client.requests

    @property
    def requests(self) -> int:
        return self.client.requests - self._requests_at_start

    def pages(self, run: Run) -> Iterator[Page]:
        if not self.stream.per_location:
            yield Page(self._locations(), {})
            return
        token = run.resume_token or {}
        for location_id in sorted(self._location_ids()):
            if location_id < token.get("location_id", location_id) or (
                location_id == token.get("location_id") and token.get("done")
            ):
                continue  # finished before the resume
            resume_at = token.get("end_cursor") if location_id == token.get("location_id") else None
            yield from self._location_pages(run, location_id, resume_at)

    def _location_pages(self, run: Run, location_id: int, cursor: str | None) -> Iterator[Page]:
        params = self._params(location_id)
        if self.stream.kind == "snapshot":
            body = self.client.get_json(self.stream.path, params)
            yield Page(_data(self.client, self.stream.path, body), _done(location_id))
            return
        self._take_clock_reading(run, location_id, params)
        since = _load_map(run.cursor_value).get(str(location_id))
        if since is not None:
            params["updated_since"] = since
        params["per_page"] = self.connection.page_size
        for rows, end_cursor, has_next in self._paged(params, cursor):
            token = {"location_id": location_id, "end_cursor": end_cursor}
            yield Page(rows, token if has_next else _done(location_id))

    def _params(self, location_id: int) -> dict:
        params: dict = {"subdomain": self.connection.subdomain, "location_id": location_id}
        if self.stream.window:
            params["start"] = self.connection.appointments_start
            params["end"] = self.connection.appointments_end
        return params

    def _take_clock_reading(self, run: Run, location_id: int, params: dict) -> None:
        """Record the location's newest updated_at before reading it (kept across a resume)."""
        watermark = _load_map(run.watermark)
        if str(location_id) in watermark:
            return
        probe = {**params, "sort": "-updated_at", "per_page": 1}
        rows = _data(self.client, self.stream.path, self.client.get_json(self.stream.path, probe))
        newest = rows[0].get("updated_at") if rows and isinstance(rows[0], dict) else None
        newest = newest or self.previous.get(str(location_id))
        if newest is not None:
            watermark[str(location_id)] = newest
            # Persisted with the next checkpoint, which covers this location's first pages.
            run.watermark = _dump_map(watermark)

    def _paged(self, params: dict, cursor: str | None) -> Iterator[tuple[list, str | None, bool]]:
        path = self.stream.path
        stuck = 0
        while True:
            request = {**params, "end_cursor": cursor} if cursor else params
            body = self.client.get_json(path, request)
            rows = _data(self.client, path, body)
            info = body.get("page_info") or {}
            has_next = bool(info.get("has_next_page"))
            end_cursor = info.get("end_cursor")
            if has_next and (not rows or not end_cursor or end_cursor == cursor):
                stuck += 1
                if stuck >= STUCK_PAGE_LIMIT:
                    raise ApiError(
                        self.client.source,
                        path,
                        f"paging is not advancing: has_next_page with no rows or no new "
                        f"end_cursor {stuck} times in a row",
                    )
                continue
            stuck = 0
            yield rows, end_cursor, has_next
            if not has_next:
                return
            cursor = end_cursor

    def _locations(self) -> list[dict]:
        params = {"subdomain": self.connection.subdomain}
        body = self.client.get_json("/locations", params)
        wanted = set(self.connection.location_ids)
        return [
            location
            for institution in _data(self.client, "/locations", body)
            if isinstance(institution, dict)
            and institution.get("subdomain") == self.connection.subdomain
            for location in institution.get("locations") or []
            if not wanted or (isinstance(location, dict) and location.get("id") in wanted)
        ]

    def _location_ids(self) -> list[int]:
        if self.connection.location_ids:
            return list(self.connection.location_ids)
        return [
            location["id"]
            for location in self._locations()
            if isinstance(location, dict) and isinstance(location.get("id"), int)
        ]


def _data(client: ApiClient, path: str, body) -> list:
    """The records of an envelope; an envelope that says it failed is an error."""
    if isinstance(body, dict) and body.get("code") is False:
        errors = "; ".join(str(e) for e in body.get("error") or [])[:300]
        raise ApiError(client.source, path, f"the API reported a failure: {errors}")
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise ApiError(client.source, path, "expected an envelope with a list in data")
    return body["data"]


def _done(location_id: int) -> dict:
    return {"location_id": location_id, "done": True}


def _check(stream: Stream, record) -> tuple[str | None, str | None]:
    key = record.get("id") if isinstance(record, dict) else None
    return (None if key is None else str(key)), contract_violation(stream.contract, record)


def _load_map(text: str | None) -> dict[str, str]:
    return json.loads(text) if text else {}


def _dump_map(cursors: dict[str, str]) -> str:
    return json.dumps(dict(sorted(cursors.items())), separators=(",", ":"))


def _filter_from(
    stream: Stream, connection: NexHealthConnection, previous: dict[str, str], mode: Mode
) -> str | None:
    """Each location's ``updated_since`` for a new run: its cursor minus the overlap window."""
    if stream.kind != "incremental" or mode == "full" or not previous:
        return None
    overlap = timedelta(minutes=connection.overlap_minutes)
    return _dump_map(
        {location: _utc_text(_parse(stamp) - overlap) for location, stamp in previous.items()}
    )


def _next_cursor(stream: Stream, previous: dict[str, str], run: Run) -> str | None:
    if stream.kind != "incremental" or run.watermark is None:
        return None
    # Locations not read this run (no longer configured) keep their cursor.
    return _dump_map({**previous, **_load_map(run.watermark)})


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def _utc_text(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


CONNECTOR = Connector(
    vendor=VENDOR,
    entities={
        entity: f"NexHealth {entity} ({stream.kind} sync of GET {stream.path}"
        + (", per location)" if stream.per_location else ")")
        for entity, stream in STREAMS.items()
    },
    sync_entity=sync_entity,
)
