"""Twilio connector: pages through Calls and Messages and hands batches to the sync engine."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx

from chairside.config import TwilioConnection, secret
from extract.connectors import Connector
from extract.contracts import contract_violation
from extract.http import ApiClient, ApiError
from extract.landing import Landing
from extract.state import Run, SyncState
from extract.sync import Mode, Page, StreamSpec, SyncResult, run_stream
from extract.twilio.contracts import rfc2822
from extract.twilio.streams import STREAMS, Stream

VENDOR = "twilio"
API_VERSION = "2010-04-01"
CURSOR_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # UTC; sorts as text in time order


def open_client(
    connection: TwilioConnection, transport: httpx.BaseTransport | None = None
) -> tuple[ApiClient, str]:
    """A client rooted at the account (paths are then ``/Calls.json``), and that root's path."""
    account = secret(connection.account_sid_env, purpose=f"{connection.id} account SID")
    token = secret(connection.auth_token_env, purpose=f"{connection.id} auth token")
    root = f"/{API_VERSION}/Accounts/{account}"
    client = ApiClient.for_connection(
        connection,
        f"{VENDOR}[{connection.id}]",
        f"{connection.base_url}{root}",
        {"Accept": "application/json"},
        transport=transport,
        auth=httpx.BasicAuth(account, token),
    )
    return client, root


def sync_entity(
    connection: TwilioConnection,
    entity: str,
    *,
    landing_root: Path | str,
    mode: Mode = "incremental",
    transport: httpx.BaseTransport | None = None,
) -> SyncResult:
    """Extract one list (calls or messages) of one Twilio account into the landing zone."""
    stream = STREAMS[entity]
    landing = Landing(landing_root)
    state = SyncState(landing_root)
    previous = state.cursor(connection.id, VENDOR, entity)
    spec = StreamSpec(
        connection_id=connection.id,
        vendor=VENDOR,
        entity=entity,
        source_timezone=connection.timezone,
        cursor_field=stream.time_field,
        check=lambda record: _check(stream, record),
        batch_rows=connection.batch_rows,
    )
    client, root = open_client(connection, transport)
    with client:
        return run_stream(
            spec,
            lambda run: TwilioPages(client, root, stream, connection.page_size),
            landing=landing,
            state=state,
            mode=mode,
            cursor_value=_filter_from(connection, previous, mode),
            next_cursor=lambda run: _next_cursor(run, previous),
        )


class TwilioPages:
    """Yields the pages of one run; the resume token is the ``next_page_uri`` still to read.

    The token is kept relative to the account root, so the sync state never holds the SID.
    """

    def __init__(self, client: ApiClient, root: str, stream: Stream, page_size: int):
        self.client = client
        self.root = root
        self.stream = stream
        self.page_size = page_size
        self._requests_at_start = client.requests

    @property
    def requests(self) -> int:
        return self.client.requests - self._requests_at_start

    def pages(self, run: Run) -> Iterator[Page]:
        if run.resume_token is None:
            path, params = self.stream.path, {"PageSize": str(self.page_size)}
            if run.cursor_value is not None:
                params[self.stream.filter_param] = run.cursor_value
        elif run.resume_token.get("next_page_uri") is None:
            return  # the run had read its last page before it stopped
        else:
            path, params = _split(run.resume_token["next_page_uri"])
        while True:
            body = self.client.get_json(path, params)
            records = self._records(body, path)
            # The cursor this run will commit; the engine checkpoints it with each batch.
            run.watermark = _latest(run.watermark, records, self.stream.time_field)
            after = self._relative(body.get("next_page_uri"), path, params)
            yield Page(records, {"next_page_uri": after})
            if after is None:
                return
            path, params = _split(after)

    def _records(self, body, path: str) -> list:
        records = body.get(self.stream.list_key) if isinstance(body, dict) else None
        if not isinstance(records, list):
            raise ApiError(
                self.client.source,
                path,
                f"expected a JSON object with a '{self.stream.list_key}' list",
            )
        return records

    def _relative(self, uri, path: str, params: dict) -> str | None:
        """The next page's URI without the account root; an error if paging would not move."""
        if uri is None:
            return None
        parts = urlsplit(uri) if isinstance(uri, str) else None
        if parts is None or not parts.path.startswith(f"{self.root}/"):
            raise ApiError(self.client.source, path, "next_page_uri is not under this account")
        after = f"{parts.path.removeprefix(self.root)}?{parts.query}"
        if _split(after) == (path, params):
            raise ApiError(self.client.source, path, "paging is not advancing")
        return after


def _split(uri: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(uri)
    return parts.path, dict(parse_qsl(parts.query, keep_blank_values=True))


def _check(stream: Stream, record) -> tuple[str | None, str | None]:
    key = record.get("sid") if isinstance(record, dict) else None
    return (None if key is None else str(key)), contract_violation(stream.contract, record)


def _latest(current: str | None, records: list, field: str) -> str | None:
    """The latest of ``current`` and the records' ``field`` times (unparsable ones skipped)."""
    times = [current] if current else []
    for record in records:
        try:
            moment = rfc2822(record.get(field)) if isinstance(record, dict) else None
        except ValueError:
            continue  # quarantined by its contract
        if moment is not None:
            times.append(moment.astimezone(UTC).strftime(CURSOR_FORMAT))
    return max(times) if times else None


def _filter_from(connection: TwilioConnection, cursor: str | None, mode: Mode) -> str | None:
    """The lower bound a new run reads from: the stored cursor minus the overlap window."""
    if mode == "full" or cursor is None:
        return None
    since = datetime.strptime(cursor, CURSOR_FORMAT) - timedelta(minutes=connection.overlap_minutes)
    return since.strftime("%Y-%m-%d" if connection.filter_granularity == "date" else CURSOR_FORMAT)


def _next_cursor(run: Run, previous: str | None) -> str | None:
    """The latest start (send) time this run saw; never earlier than the cursor it replaces.

    Why re-reading from ``cursor - overlap`` loses nothing:
    - a record's start time is fixed when it appears, and Twilio lists a call from the moment it
      starts, so a record not seen yet either starts after the cursor (inside the next window) or
      was seen while still changing;
    - a record that was still changing (a call in progress, a text not yet delivered) has a start
      no more than one call length before the cursor: the cursor is the latest start seen, which
      is either its own or one that came while it was still going. An overlap longer than the
      longest call (``overlap_minutes``) therefore re-reads it until it has settled;
    - the cursor comes from Twilio's own timestamps, so our clock's skew cannot open a gap;
    - it moves only when the run completes, after every batch is durable: a failed run keeps
      the old cursor, and its resumed run continues from the stored ``next_page_uri`` with the
      same filter. Records added while a run pages are newer than everything it saw.
    Re-read records land again; staging keeps the newest version of each SID.
    """
    candidates = [c for c in (run.watermark, previous) if c]
    return max(candidates) if candidates else None


CONNECTOR = Connector(
    vendor=VENDOR,
    entities={
        entity: f"Twilio {entity} (GET {stream.path}, {stream.filter_param}= window)"
        for entity, stream in STREAMS.items()
    },
    sync_entity=sync_entity,
)
