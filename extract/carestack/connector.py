"""CareStack connector: reads one account's reference lists and sync feeds into the landing zone.

Streams and their sync rules are in ``extract.carestack.streams``; credentials in
``extract.carestack.auth``; location matching in ``extract.carestack.locations``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from chairside import paths
from chairside.config import CareStackConnection, Location, load_organisation
from extract.carestack.auth import credentials
from extract.carestack.contracts import parse_instant
from extract.carestack.locations import match_locations
from extract.carestack.streams import ENTITIES, STREAMS, Stream
from extract.connectors import Connector
from extract.contracts import contract_violation
from extract.http import ApiClient, ApiError
from extract.landing import Landing
from extract.state import Run, SyncState
from extract.sync import Mode, Page, StreamSpec, SyncResult, run_stream

VENDOR = "carestack"
CURSOR_FIELD = "lastModifiedOn"
# A feed that hands back the continueToken it was given this often in a row is not advancing.
STUCK_PAGE_LIMIT = 3

log = logging.getLogger("chairside.extract.carestack")


def sync_entity(
    connection: CareStackConnection,
    entity: str,
    *,
    landing_root: Path | str,
    mode: Mode = "incremental",
    transport: httpx.BaseTransport | None = None,
    locations: Sequence[Location] | None = None,
) -> SyncResult:
    """Extract one entity of one CareStack account into the landing zone.

    ``locations`` (only for ``location_matches``): the organisation's locations to match; by
    default those of the organisation config at ``CHAIRSIDE_CONFIG``.
    """
    stream = STREAMS[entity]
    landing = Landing(landing_root)
    state = SyncState(landing_root)
    previous = state.cursor(connection.id, VENDOR, entity)
    spec = StreamSpec(
        connection_id=connection.id,
        vendor=VENDOR,
        entity=entity,
        source_timezone=connection.timezone,
        cursor_field=CURSOR_FIELD if stream.kind == "sync" else None,
        check=lambda record: _check(stream, record),
        batch_rows=connection.batch_rows,
    )
    configured = _configured_locations(connection, locations) if stream.kind == "matches" else []
    source = f"{VENDOR}[{connection.id}]"
    timeout = httpx.Timeout(
        connection.read_timeout_s,
        connect=connection.connect_timeout_s,
        pool=connection.connect_timeout_s,
    )
    headers, token_flow = credentials(connection, source, timeout=timeout, transport=transport)
    client = ApiClient.for_connection(
        connection,
        source,
        connection.base_url,
        headers,
        transport=transport,
        auth=token_flow,
    )

    def pages(run: Run) -> _Pages:
        if stream.kind == "matches":
            return MatchPages(client, stream, configured)
        return CareStackPages(client, stream, connection)

    try:
        return run_stream(
            spec,
            pages,
            landing=landing,
            state=state,
            mode=mode,
            cursor_value=_filter_from(stream, connection, previous, mode),
            next_cursor=lambda run: _next_cursor(stream, previous, run),
        )
    finally:
        client.close()
        if token_flow is not None:
            token_flow.close()


class _Pages:
    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self._requests_at_start = client.requests

    @property
    def requests(self) -> int:
        return self.client.requests - self._requests_at_start

    def _list(self, path: str) -> list:
        rows = self.client.get_json(path)
        if not isinstance(rows, list):
            raise ApiError(self.client.source, path, "expected a JSON list of records")
        return rows


class CareStackPages(_Pages):
    """Yields pages for one run, continuing from the run's checkpointed continueToken."""

    def __init__(self, client: ApiClient, stream: Stream, connection: CareStackConnection):
        super().__init__(client)
        self.stream = stream
        self.path = stream.path_for(connection)

    def pages(self, run: Run) -> Iterator[Page]:
        if self.stream.kind == "snapshot":
            yield Page(self._list(self.path), {"done": True})
            return
        resume = run.resume_token or {}
        if resume.get("done"):
            return
        saved = token = resume.get("continueToken")
        params = {"modifiedSince": run.cursor_value} if run.cursor_value else {}
        stuck = 0
        while True:
            try:
                body = self.client.get_json(self.path, {**params, **_token_param(token)})
            except ApiError as error:
                # How long CareStack honours a continueToken is unknown: a resumed run whose
                # saved token is refused starts its filter over (re-read rows collapse in
                # staging) instead of failing on every retry.
                if token is None or token != saved or error.status != 400:
                    raise
                log.warning(
                    "%s GET %s: saved continueToken refused; re-reading from modifiedSince",
                    self.client.source,
                    self.path,
                )
                saved = token = None
                continue
            records, next_token = self._unpack(body)
            stuck = stuck + 1 if next_token is not None and next_token == token else 0
            if stuck >= STUCK_PAGE_LIMIT:
                raise ApiError(self.client.source, self.path, "paging is not advancing")
            # The cursor covers exactly the pages handed to the engine so far.
            run.watermark = _latest(records, run.watermark)
            done = not next_token or not records
            yield Page(records, {"continueToken": next_token, "done": done})
            if done:
                return
            token = next_token

    def _unpack(self, body) -> tuple[list, str | None]:
        """``{results, continueToken}`` (PascalCase also seen: ``Results``)."""
        if isinstance(body, dict):
            records = body.get("results", body.get("Results"))
            token = body.get("continueToken", body.get("ContinueToken"))
            if isinstance(records, list) and (token is None or isinstance(token, str)):
                return records, token or None
        raise ApiError(
            self.client.source, self.path, "expected {results: [...], continueToken} in the body"
        )


class MatchPages(_Pages):
    """One page: CareStack's current locations matched to the organisation's."""

    def __init__(self, client: ApiClient, stream: Stream, configured: Sequence[Location]):
        super().__init__(client)
        self.stream = stream
        self.configured = configured

    def pages(self, run: Run) -> Iterator[Page]:
        matches = match_locations(self._list(self.stream.path), self.configured)
        counts = Counter(m.status for m in matches)
        log.info(
            "%s location matches: %s",
            self.client.source,
            ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "none",
        )
        for match in matches:
            if match.status == "proposed":
                # Location names are business names, not PHI: ops need them to decide.
                log.warning(
                    "%s: CareStack location %s %r looks like %r (score %.2f): set "
                    "pms_location_id: '%s' on location %s to confirm",
                    self.client.source,
                    match.carestack_location_id,
                    match.carestack_location_name,
                    match.proposed_location_name,
                    match.score,
                    match.carestack_location_id,
                    match.proposed_location_id,
                )
        yield Page([m.record() for m in matches], {"done": True})


def _token_param(token: str | None) -> dict[str, str]:
    return {"continueToken": token} if token else {}


def _latest(records: list, current: str | None) -> str | None:
    """The largest lastModifiedOn among ``records`` and ``current``, as a UTC ISO text."""
    latest = parse_instant(current) if current else None
    for record in records:
        if not isinstance(record, dict):
            continue
        try:
            stamp = parse_instant(record.get(CURSOR_FIELD))
        except ValueError:
            continue  # quarantined by its contract; it cannot move the cursor
        if latest is None or stamp > latest:
            latest = stamp
    return None if latest is None else _iso(latest)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _check(stream: Stream, record) -> tuple[str | None, str | None]:
    key = record.get(stream.key) if isinstance(record, dict) else None
    key_text = None if key is None else str(key)
    if stream.contract is None:
        return key_text, None
    return key_text, contract_violation(stream.contract, record)


def _next_cursor(stream: Stream, previous: str | None, run: Run) -> str | None:
    """The largest lastModifiedOn the run saw; never earlier than the cursor it started from
    (rows re-read in the overlap are older than the cursor)."""
    if stream.kind != "sync" or run.watermark is None:
        return None
    return _latest([{CURSOR_FIELD: previous}] if previous else [], run.watermark)


def _filter_from(
    stream: Stream, connection: CareStackConnection, cursor: str | None, mode: Mode
) -> str | None:
    """modifiedSince for a new run: the stored cursor minus the overlap window."""
    if stream.kind != "sync" or mode == "full" or cursor is None:
        return None
    return _iso(parse_instant(cursor) - timedelta(minutes=connection.overlap_minutes))


def _configured_locations(
    connection: CareStackConnection, locations: Sequence[Location] | None
) -> list[Location]:
    if locations is None:
        locations = load_organisation(paths.config_path()).locations
    return [location for location in locations if location.connection == connection.id]


DESCRIPTIONS = {
    "locations": "CareStack locations (snapshot of GET locations)",
    "appointment_statuses": "The practice's own appointment statuses (snapshot of GET "
    "appointment-status)",
    "providers": "CareStack providers (snapshot of GET providers)",
    "operatories": "CareStack operatories (snapshot of GET operatories)",
    "patients": "CareStack patients (sync feed by modifiedSince)",
    "appointments": "CareStack appointments (sync feed by modifiedSince)",
    "appointment_requests": "Online appointment requests (sync feed by modifiedSince)",
    "conversation_calls": "CS Conversation calls (sync feed by modifiedSince)",
    "location_matches": "CareStack locations matched to the organisation's locations "
    "(confirmed, exact, proposed for a person to confirm, unmatched, missing)",
}

CONNECTOR = Connector(
    vendor=VENDOR,
    entities={entity: DESCRIPTIONS[entity] for entity in ENTITIES},
    sync_entity=sync_entity,
)
