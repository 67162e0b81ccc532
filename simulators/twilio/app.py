"""Twilio REST API simulator: the world's phone log over ``/2010-04-01/Accounts/{AccountSid}``.

Every API request passes the gate: HTTP Basic auth (``AccountSid:AuthToken``; the path's
account must be the authenticated one), a token-bucket throttle per account, then any scripted
fault (the shared ``simulators.faults`` rules, matched on the path after the account prefix,
e.g. ``^/Calls``). Errors are Twilio's JSON (``{code, message, more_info, status}``).

``Calls.json`` and ``Messages.json`` list records newest first (by start time, by date sent)
and page with ``PageSize`` (capped at ``max_page_size``) and ``next_page_uri``, whose
``PageToken`` names the last record served, so records added while a client pages never shift
the pages it has not read yet. Filters: ``StartTime`` / ``DateSent`` with ``=``, ``>=`` and
``<=`` (a ``YYYY-MM-DD`` UTC date, or a ``YYYY-MM-DDTHH:MM:SSZ`` time when
``datetime_filters``), ``To``, ``From``, ``ParentCallSid`` and ``Status`` (calls).
Admin endpoints under ``/_sim`` (loopback only, no auth) script faults and drive the world.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import polars as pl
from fastapi import APIRouter, FastAPI, Request
from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse, Response

from simulators import faults as fault_rules
from simulators.admin import admin_router
from simulators.gate import RequestStats, Throttle
from simulators.twilio import wire
from simulators.twilio.data import WORLD_TABLES, PhoneLog, PhoneSettings, derive, lines_frame
from simulators.world import World

API_ROOT = f"/{wire.API_VERSION}/Accounts"
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
DAY_S = 86_400


@dataclass
class TwilioSimSettings:
    account_sid: str = "AC" + "5" * 32
    auth_token: str = "sim-auth-token"
    # Twilio limits concurrency rather than publishing a rate; None turns throttling off.
    requests_per_second: float | None = None
    throttle_burst: float = 1.0
    # Unconfirmed whether Twilio's 429 carries Retry-After; None sends none.
    throttle_retry_after: int | None = None
    default_page_size: int = 50
    max_page_size: int = 1000
    # The docs only show YYYY-MM-DD dates in StartTime/DateSent filters (twilio-python sends
    # full ISO times). True honours a time to the second; False cuts it to its UTC date.
    datetime_filters: bool = True
    phone: PhoneSettings = field(default_factory=PhoneSettings)


class TwilioError(Exception):
    """An error answered as Twilio's JSON error body."""

    def __init__(self, status: int, code: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers

    def response(self) -> Response:
        body = {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }
        return Response(
            orjson.dumps(body),
            status_code=self.status,
            media_type="application/json",
            headers=self.headers,
        )


def _authenticate(header: str | None, settings: TwilioSimSettings) -> str:
    """The account SID of valid Basic credentials; never echoes what was presented."""
    scheme, _, encoded = (header or "").strip().partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise TwilioError(401, 20003, "Authenticate")
    try:
        user, colon, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise TwilioError(401, 20003, "Authenticate") from None
    expected = f"{settings.account_sid}:{settings.auth_token}".encode()
    if not colon or not hmac.compare_digest(f"{user}:{password}".encode(), expected):
        raise TwilioError(401, 20003, "Authenticate")
    return user


# --- the derived phone log, rebuilt when the world changes ---------------------------------


class PhoneData:
    """The phone log of the world's current state and its rendered listings, cached."""

    def __init__(self, world: World, settings: TwilioSimSettings):
        self.world = world
        self.settings = settings
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._log: PhoneLog | None = None
        self._now = 0
        self._listings: dict[str, wire.Listing] = {}

    def current(self) -> tuple[PhoneLog, int]:
        with self._lock, self.world.lock:
            tables = self.world.tables
            key = (
                self.world.now_utc,
                *((id(tables[t]), tables[t].height) for t in WORLD_TABLES),
            )
            if key != self._key:
                self._log = derive(self.world, self.settings.phone)
                self._now = int(self.world.now_utc.timestamp())
                self._key, self._listings = key, {}
            return self._log, self._now

    def listing(self, entity: str) -> wire.Listing:
        log, now = self.current()
        with self._lock:
            if entity not in self._listings:
                render = wire.calls_listing if entity == "calls" else wire.messages_listing
                self._listings[entity] = render(log, now, self.settings.account_sid)
            return self._listings[entity]


# --- list endpoints ------------------------------------------------------------------------


@dataclass(frozen=True)
class Resource:
    entity: str  # also the list's key in the response body
    path: str
    time_param: str
    filters: dict[str, str]  # query parameter -> index column compared for equality


CALLS = Resource(
    "calls",
    "/Calls.json",
    "StartTime",
    {"To": "to", "From": "from", "ParentCallSid": "parent_call_sid", "Status": "status"},
)
MESSAGES = Resource("messages", "/Messages.json", "DateSent", {"To": "to", "From": "from"})
_PAGING = ("PageSize", "Page", "PageToken")


def _parse_time(name: str, text: str, exact: bool) -> tuple[int, bool]:
    """(epoch seconds, is a whole date) of a filter value."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()), True
        moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise TwilioError(
            400, 20001, f"Invalid {name}: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ"
        ) from None
    if exact:
        return int(moment.timestamp()), False
    midnight = moment.replace(hour=0, minute=0, second=0)
    return int(midnight.timestamp()), True


def _time_filter(resource: Resource, query: list[tuple[str, str]], exact: bool) -> pl.Expr | None:
    """``Name>=`` reaches us as key ``Name>`` (or ``Name>=`` if the client encoded the '=')."""
    exprs = []
    for key, value in query:
        op = key.removeprefix(resource.time_param)
        if not key.startswith(resource.time_param) or op not in ("", ">", ">=", "<", "<="):
            continue
        at, whole_day = _parse_time(key, value, exact)
        column = pl.col("at")
        if op.startswith(">"):
            exprs.append(column >= at)
        elif op.startswith("<"):
            # On or before a date: anywhere on that date.
            exprs.append(column < at + DAY_S if whole_day else column <= at)
        else:
            exprs.append((column >= at) & (column < at + DAY_S))
    return pl.all_horizontal(exprs) if exprs else None


def _int_param(query: dict[str, str], name: str, default: int, minimum: int) -> int:
    text = query.get(name)
    if text is None:
        return default
    if not text.isdigit() or int(text) < minimum:
        raise TwilioError(400, 20001, f"Invalid {name}: expected an integer >= {minimum}")
    return int(text)


class TwilioSimulator:
    def __init__(self, world: World, settings: TwilioSimSettings) -> None:
        self.world = world
        self.settings = settings
        self.data = PhoneData(world, settings)
        self.faults = fault_rules.FaultSet()
        self.stats = RequestStats()
        self.throttle = Throttle(settings.requests_per_second, settings.throttle_burst)

    # -- gate ------------------------------------------------------------------------------

    async def gate(self, request: Request, call_next: fault_rules.CallNext) -> Response:
        path = request.url.path
        if not path.startswith(f"{API_ROOT}/"):
            return await call_next(request)
        _, _, api_path = path.removeprefix(f"{API_ROOT}/").partition("/")
        api_path = f"/{api_path}"
        try:
            response = await self._guarded(request, path, api_path, call_next)
        except TwilioError as error:
            response = error.response()
        self.stats.record(api_path, response.status_code)
        return response

    async def _guarded(self, request, path: str, api_path: str, call_next) -> Response:
        account = _authenticate(request.headers.get("authorization"), self.settings)
        if not path.startswith(f"{API_ROOT}/{account}/"):
            raise TwilioError(404, 20404, f"The requested resource {path} was not found")
        if not self.throttle.allow(account):
            headers = {}
            if self.settings.throttle_retry_after is not None:
                headers["Retry-After"] = str(self.settings.throttle_retry_after)
            raise TwilioError(429, 20429, "Too Many Requests", headers)
        rule = self.faults.take(api_path)
        if rule is None:
            return await call_next(request)
        if rule.kind == "corrupt":
            return await _corrupted(await call_next(request), rule)
        response = await fault_rules.apply(rule, request, call_next)
        if rule.kind == "status":
            retry_after = response.headers.get("retry-after")
            headers = {"Retry-After": retry_after} if retry_after else None
            phrase = response.body.decode().removeprefix(f"{rule.code} ")
            raise TwilioError(rule.code, 20000 + rule.code, phrase, headers)
        return response

    # -- listing ---------------------------------------------------------------------------

    def list_page(self, resource: Resource, request: Request) -> Response:
        pairs = list(request.query_params.multi_items())
        query = dict(pairs)
        size = min(
            _int_param(query, "PageSize", self.settings.default_page_size, 1),
            self.settings.max_page_size,
        )
        page = _int_param(query, "Page", 0, 0)
        listing = self.data.listing(resource.entity)
        rows = listing.index
        where = _time_filter(resource, pairs, self.settings.datetime_filters)
        for name, column in resource.filters.items():
            if name in query:
                rows = rows.filter(pl.col(column) == query[name])
        if where is not None:
            rows = rows.filter(where)
        rows = self._after_token(listing, rows, query.get("PageToken"), request)
        served = rows.head(size)["position"].to_list()
        filters = [(k, v) for k, v in pairs if k not in _PAGING]
        account = self.settings.account_sid
        base = f"{API_ROOT}/{account}{resource.path}"

        def uri(**paging: Any) -> str:
            return f"{base}?{urlencode([*filters, ('PageSize', size), *paging.items()])}"

        last = listing.records[served[-1]]["sid"] if served else None
        body = {
            resource.entity: [listing.records[p] for p in served],
            "end": page * size + max(len(served) - 1, 0),
            "first_page_uri": uri(Page=0),
            "next_page_uri": (
                uri(Page=page + 1, PageToken=f"PA{last}") if rows.height > len(served) else None
            ),
            "page": page,
            "page_size": size,
            "previous_page_uri": None,
            "start": page * size,
            "uri": f"{base}?{request.url.query}" if request.url.query else base,
        }
        return Response(orjson.dumps(body), media_type="application/json")

    def _after_token(
        self, listing: wire.Listing, rows: pl.DataFrame, token: str | None, request: Request
    ) -> pl.DataFrame:
        """Rows after the one the token names, in list order (a "shift" fault moves back)."""
        shift = getattr(request.state, fault_rules.OFFSET_SHIFT_STATE, 0)
        if token is None:
            return rows
        named = listing.index.filter(pl.col("sid") == token.removeprefix("PA"))
        if not token.startswith("PA") or named.is_empty():
            raise TwilioError(400, 20001, "Invalid PageToken")
        last = named.row(0, named=True)
        after = (pl.col("order") < last["order"]) | (
            (pl.col("order") == last["order"]) & (pl.col("sid") < last["sid"])
        )
        first = rows.with_row_index("_i").filter(after)["_i"].min()
        if first is None:
            return rows.clear()
        return rows.slice(max(0, int(first) - shift))


async def _corrupted(response: Response, rule: fault_rules.FaultRule) -> Response:
    """Overwrite one field of the page's first record (the list sits inside an envelope)."""
    body = b"".join([chunk async for chunk in response.body_iterator])  # type: ignore[attr-defined]
    page = orjson.loads(body)
    for value in page.values() if isinstance(page, dict) else ():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            value[0][rule.record_field] = rule.value
            break
    return Response(
        orjson.dumps(page), status_code=response.status_code, media_type="application/json"
    )


def _list_endpoint(sim: TwilioSimulator, resource: Resource) -> Callable:
    async def endpoint(request: Request) -> Response:
        # Deriving and rendering run off the event loop: other requests keep flowing.
        return await asyncio.to_thread(sim.list_page, resource, request)

    return endpoint


def _api_router(sim: TwilioSimulator) -> APIRouter:
    router = APIRouter(prefix=f"{API_ROOT}/{{account_sid}}")
    for resource in (CALLS, MESSAGES):
        router.add_api_route(resource.path, _list_endpoint(sim, resource), methods=["GET"])
    return router


# --- admin ---------------------------------------------------------------------------------


def export(sim: TwilioSimulator, directory: Path) -> None:
    """The world's tables, the phone log as served now, and its truth, as Parquet files."""
    sim.world.export_truth(directory)
    log, now = sim.data.current()
    for entity, drop in (("calls", ["subresource_uris"]), ("messages", ["subresource_uris"])):
        records = sim.data.listing(entity).records
        frame = pl.DataFrame(records, infer_schema_length=None).drop(drop, strict=False)
        frame.write_parquet(directory / f"twilio_{entity}.parquet")
    wire.truth_calls(log, now).write_parquet(directory / "truth_twilio_calls.parquet")
    wire.truth_messages(log, now).write_parquet(directory / "truth_twilio_messages.parquet")
    wire.truth_reminder_replies(log, now).write_parquet(
        directory / "truth_reminder_replies.parquet"
    )
    lines_frame(sim.world).write_parquet(directory / "twilio_numbers.parquet")


def _admin_router(sim: TwilioSimulator) -> APIRouter:
    router = admin_router(
        sim.world, sim.faults, sim.stats, lambda directory: export(sim, directory)
    )

    @router.get("/numbers")
    async def numbers() -> list[dict[str, Any]]:
        return lines_frame(sim.world).to_dicts()

    return router


def create_app(world: World, settings: TwilioSimSettings | None = None) -> FastAPI:
    sim = TwilioSimulator(world, settings or TwilioSimSettings())
    app = FastAPI(title="Twilio API simulator", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.world = world
    app.state.settings = sim.settings
    app.state.faults = sim.faults
    app.state.stats = sim.stats
    app.state.sim = sim
    app.middleware("http")(sim.gate)
    app.include_router(_api_router(sim))
    app.include_router(_admin_router(sim))

    @app.exception_handler(TwilioError)
    async def twilio_error(_: Request, error: TwilioError) -> Response:
        return error.response()

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        if request.url.path.startswith(f"{API_ROOT}/") and error.status_code == 404:
            message = f"The requested resource {request.url.path} was not found"
            return TwilioError(404, 20404, message).response()
        return PlainTextResponse(str(error.detail), error.status_code, headers=error.headers)

    return app
