"""Stripe connector: pages through the account's lists and hands batches to the sync engine.

Paging is by object id: each page's last id goes into the run's resume token, so a failed or
killed run resumes with ``starting_after`` that id, on the page after the last durable batch.
Ids never shift the way offsets do, so no page needs re-reading. See ``streams`` for how each
list is kept up to date.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import httpx

from chairside.config import StripeConnection, secret
from extract.connectors import Connector
from extract.contracts import contract_violation
from extract.http import ApiClient, ApiError
from extract.landing import Landing
from extract.state import Run, SyncState
from extract.stripe.streams import STREAMS, Stream
from extract.sync import Mode, Page, StreamSpec, SyncResult, run_stream

VENDOR = "stripe"


def open_client(
    connection: StripeConnection, transport: httpx.BaseTransport | None = None
) -> ApiClient:
    key = secret(connection.api_key_env, purpose=f"{connection.id} API key")
    return ApiClient.for_connection(
        connection,
        f"{VENDOR}[{connection.id}]",
        connection.base_url,
        {"Authorization": f"Bearer {key}"},
        transport=transport,
    )


def sync_entity(
    connection: StripeConnection,
    entity: str,
    *,
    landing_root: Path | str,
    mode: Mode = "incremental",
    transport: httpx.BaseTransport | None = None,
) -> SyncResult:
    """Extract one list of one Stripe account into the landing zone."""
    stream = STREAMS[entity]
    landing = Landing(landing_root)
    state = SyncState(landing_root)
    previous = state.cursor(connection.id, VENDOR, entity)
    # Itemized balance transactions are keyed "<payout id>:<txn id>": the payout is named only
    # in the request, and this key is how staging links the two without touching the record.
    owners: dict[str, str] = {}
    spec = StreamSpec(
        connection_id=connection.id,
        vendor=VENDOR,
        entity=entity,
        source_timezone=connection.timezone,
        cursor_field={"created": "created", "payout_items": "payout"}.get(stream.kind),
        check=lambda record: _check(stream, record, owners),
        batch_rows=connection.batch_rows,
    )
    with open_client(connection, transport) as client:
        return run_stream(
            spec,
            lambda run: StripePages(client, stream, connection, landing, owners),
            landing=landing,
            state=state,
            mode=mode,
            cursor_value=_filter_from(stream, connection, previous, mode),
            next_cursor=lambda run: _next_cursor(stream, run),
        )


class StripePages:
    """Yields pages for one run, starting where the run's checkpoint says."""

    def __init__(
        self,
        client: ApiClient,
        stream: Stream,
        connection: StripeConnection,
        landing: Landing,
        owners: dict[str, str],
    ):
        self.client = client
        self.stream = stream
        self.connection = connection
        self.landing = landing
        self.owners = owners
        self._requests_at_start = client.requests

    @property
    def requests(self) -> int:
        return self.client.requests - self._requests_at_start

    def pages(self, run: Run) -> Iterator[Page]:
        if self.stream.kind == "payout_items":
            yield from self._payout_items(run)
            return
        params = {}
        if self.stream.kind == "created" and run.cursor_value is not None:
            params["created[gte]"] = run.cursor_value
        token = run.resume_token or {}
        newest = token.get("max_created")
        for rows, last_id in self._listed(params, token.get("starting_after")):
            created = [
                r["created"] for r in rows if isinstance(r, dict) and type(r.get("created")) is int
            ]
            newest = max([*created, *([newest] if newest is not None else [])], default=None)
            yield Page(rows, {"starting_after": last_id, "max_created": newest})

    def _listed(self, params: dict, after: str | None) -> Iterator[tuple[list[dict], str | None]]:
        """Pages of a list from ``after`` on: (records, id to continue after)."""
        path = self.stream.path
        while True:
            query = {**params, "limit": self.connection.page_size}
            if after:
                query["starting_after"] = after
            body = self.client.get_json(path, query)
            if not (
                isinstance(body, dict)
                and isinstance(body.get("data"), list)
                and isinstance(body.get("has_more"), bool)
            ):
                raise ApiError(self.client.source, path, "expected a Stripe list object")
            rows = [r for r in body["data"] if isinstance(r, dict)]
            last = rows[-1].get("id") if rows else after
            if body["has_more"] and (not isinstance(last, str) or last == after):
                # Guards against a has_more that never turns false.
                raise ApiError(self.client.source, path, f"paging is not advancing after {after}")
            yield body["data"], last
            if not body["has_more"]:
                return
            after = last

    def _payout_items(self, run: Run) -> Iterator[Page]:
        if run.watermark is None:
            # Fix the payouts this run covers (landed up to now), so a resumed run covers the
            # same set and the next run starts exactly where this one ends.
            run.watermark = _latest_extraction(self.landing, self.connection.id)
        lower = None if run.mode == "full" else run.cursor_value
        after = (run.resume_token or {}).get("after")
        for payout in _payout_ids(self.landing, self.connection.id, lower, run.watermark, after):
            rows: list[dict] = []
            for page, _ in self._listed({"payout": payout}, None):
                rows.extend(page)
            self.owners.update({r["id"]: payout for r in rows if isinstance(r.get("id"), str)})
            yield Page(rows, {"after": payout})


def _check(stream: Stream, record, owners: dict[str, str]) -> tuple[str | None, str | None]:
    key = record.get("id") if isinstance(record, dict) else None
    key_text = key if isinstance(key, str) else None
    if stream.kind == "payout_items" and key_text is not None:
        key_text = f"{owners.get(key_text)}:{key_text}"
    return key_text, contract_violation(stream.contract, record)


def _filter_from(
    stream: Stream, connection: StripeConnection, cursor: str | None, mode: Mode
) -> str | None:
    """The filter value for a new run: the stored cursor minus the overlap window."""
    if mode == "full" or cursor is None or stream.kind == "snapshot":
        return None
    if stream.kind == "created":
        return str(max(0, int(cursor) - connection.overlap_minutes * 60))
    return cursor


def _next_cursor(stream: Stream, run: Run) -> str | None:
    if stream.kind == "payout_items":
        return run.watermark
    newest = (run.resume_token or {}).get("max_created")
    return None if stream.kind == "snapshot" or newest is None else str(newest)


def _payout_files(landing: Landing, connection_id: str) -> list[str]:
    return [str(p) for p in landing.load_files(VENDOR, "payouts", connection_id)]


def _latest_extraction(landing: Landing, connection_id: str) -> str | None:
    files = _payout_files(landing, connection_id)
    if not files:
        return None
    rows = _query(
        "select strftime(max(_extracted_at) at time zone 'UTC', '%Y-%m-%dT%H:%M:%S.%fZ') "
        "from read_parquet($files)",
        {"files": files},
    )
    return rows[0][0]


def _payout_ids(
    landing: Landing, connection_id: str, lower: str | None, upper: str | None, after: str | None
) -> list[str]:
    """Automatic payouts landed in (lower, upper], in id order, after ``after`` (a resume)."""
    files = _payout_files(landing, connection_id)
    if not files or upper is None:
        return []
    rows = _query(
        """
        select distinct json_extract_string(_record, '$.id') as k
        from read_parquet($files)
        where _extracted_at <= cast($upper as timestamptz)
          and ($lower is null or _extracted_at > cast($lower as timestamptz))
          and json_extract_string(_record, '$.automatic') = 'true'
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
        entity: f"Stripe {entity} ({stream.kind} sync of GET {stream.path})"
        for entity, stream in STREAMS.items()
    },
    sync_entity=sync_entity,
    parents={"payout_balance_transactions": "payouts"},
)
