"""Open Dental remote API simulator: serves a World over the documented ``/api/v1`` contract.

Every API request passes the gate: auth (``ODFHIR {DeveloperKey}/{CustomerKey}``; the customer
key picks the office), a token-bucket throttle per customer key, then any scripted fault. List
endpoints page with ``Offset``/``Limit`` (capped at ``max_page_size``) in primary-key order.
Admin endpoints under ``/_sim`` (loopback only, no auth) script faults and drive the world;
``GET /_sim/written`` lists what the write endpoints (``simulators.opendental.writes``) committed.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import polars as pl
from fastapi import APIRouter, FastAPI, Request
from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse, Response

from simulators import faults as fault_rules
from simulators.admin import admin_router
from simulators.gate import RequestStats, Throttle
from simulators.opendental.wire import (
    LOOKUP_TABLES,
    RowRenderer,
    parse_bool,
    parse_date,
    parse_datetime,
    parse_int,
)
from simulators.opendental.writes import (
    OpenDentalWrites,
    WriteError,
    WriteLog,
    WriteSettings,
    parse_body,
)
from simulators.world import World

API_PREFIX = "/api/v1"
_AUTH_SCHEME = "ODFHIR"
_AUTH_SHAPE = "Expected header 'Authorization: ODFHIR {DeveloperKey}/{CustomerKey}'."
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})

PATIENT_STATUSES = (
    "Patient",
    "NonPatient",
    "Inactive",
    "Archived",
    "Deleted",
    "Deceased",
    "Prospective",
)
APPOINTMENT_STATUSES = (
    "None",
    "Scheduled",
    "Complete",
    "UnschedList",
    "ASAP",
    "Broken",
    "Planned",
    "PtNote",
    "PtNoteCompleted",
)


@dataclass
class OpenDentalSimSettings:
    developer_key: str = "sim-developer-key"
    # Documented rate for developers with more than ReadAll; None turns throttling off.
    requests_per_second: float | None = 1.0
    throttle_burst: float = 1.0  # bucket size: how many requests may arrive back to back
    throttle_status: int = 429  # the real code is undocumented
    throttle_retry_after: int | None = None  # seconds; None sends no Retry-After header
    max_page_size: int = 100  # default and cap for Limit (the remote API's hard max)
    writes: WriteSettings = field(default_factory=WriteSettings)


class ApiError(Exception):
    """An error answered as a plain-text explanation, like Open Dental does."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> Response:
        return PlainTextResponse(self.message, status_code=self.status)


# --- filters and resources ---------------------------------------------------------------


@dataclass(frozen=True)
class Filter:
    parse: Callable[[str], Any]
    where: Callable[[Any], pl.Expr]
    expects: str
    default: Any = None  # applied when the parameter is absent; None = no filtering


def _equals_int(column: str) -> Filter:
    return Filter(parse_int, lambda v: pl.col(column) == v, "an integer")


def _equals_enum(column: str, names: tuple[str, ...]) -> Filter:
    canonical = {name.lower(): name for name in names}

    def parse(text: str) -> str:
        if text.strip().lower() not in canonical:
            raise ValueError(text)
        return canonical[text.strip().lower()]

    return Filter(parse, lambda v: pl.col(column) == v, f"one of {', '.join(names)}")


def _name_prefix(column: str) -> Filter:
    # Name searches are case-insensitive "starts with", as in Open Dental's patient search.
    return Filter(
        lambda text: text.strip().lower(),
        lambda v: pl.col(column).str.to_lowercase().str.starts_with(v),
        "text",
    )


def _on_date(column: str) -> Filter:
    return Filter(parse_date, lambda v: pl.col(column) == v, "a date yyyy-MM-dd")


def _stamp_since(column: str) -> Filter:
    return Filter(parse_datetime, lambda v: pl.col(column) >= v, "a datetime yyyy-MM-dd HH:mm:ss")


def _date_since(column: str) -> Filter:
    return Filter(parse_date, lambda v: pl.col(column) >= v, "a date yyyy-MM-dd")


def _day(column: str, compare: Callable[[pl.Expr, Any], pl.Expr]) -> Filter:
    """Compare the calendar date of a datetime column (dateStart/dateEnd are inclusive)."""
    return Filter(parse_date, lambda v: compare(pl.col(column).dt.date(), v), "a date yyyy-MM-dd")


# The world has no provider-clinic restrictions, so every provider serves every clinic: the
# filter is validated like Open Dental's but keeps all rows.
_ANY_CLINIC = Filter(parse_int, lambda _: pl.lit(True), "an integer")
_INCLUDE_HIDDEN = Filter(
    parse_bool,
    lambda include: pl.lit(True) if include else ~pl.col("IsHidden"),
    "true or false",
    default=False,
)


@dataclass(frozen=True)
class Resource:
    table: str
    pk: str
    filters: Mapping[str, Filter] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    always: pl.Expr | None = None


PATIENTS = Resource(
    "patients",
    "PatNum",
    {
        "DateTStamp": _stamp_since("DateTStamp"),
        "ClinicNum": _equals_int("ClinicNum"),
        "PatStatus": _equals_enum("PatStatus", PATIENT_STATUSES),
        "LName": _name_prefix("LName"),
        "FName": _name_prefix("FName"),
        "Birthdate": _on_date("Birthdate"),
        "Guarantor": _equals_int("Guarantor"),
        "PriProv": _equals_int("PriProv"),
    },
)
APPOINTMENTS = Resource(
    "appointments",
    "AptNum",
    {
        "DateTStamp": _stamp_since("DateTStamp"),
        "PatNum": _equals_int("PatNum"),
        "AptStatus": _equals_enum("AptStatus", APPOINTMENT_STATUSES),
        "Op": _equals_int("Op"),
        "ClinicNum": _equals_int("ClinicNum"),
        "AppointmentTypeNum": _equals_int("AppointmentTypeNum"),
        "date": _day("AptDateTime", lambda day, v: day == v),
        "dateStart": _day("AptDateTime", lambda day, v: day >= v),
        "dateEnd": _day("AptDateTime", lambda day, v: day <= v),
    },
)
PAYMENTS = Resource(
    "payments",
    "PayNum",
    {
        "PatNum": _equals_int("PatNum"),
        "PayType": _equals_int("PayType"),
        "DateEntry": _date_since("DateEntry"),
    },
)
PAYSPLITS = Resource(
    "paysplits",
    "SplitNum",
    {name: _equals_int(name) for name in ("PatNum", "PayNum", "ProcNum")},
)
ADJUSTMENTS = Resource(
    "adjustments",
    "AdjNum",
    {name: _equals_int(name) for name in ("PatNum", "AdjType", "ProcNum")},
    required=("PatNum",),
)
DEFINITIONS = Resource(
    "definitions",
    "DefNum",
    {"Category": _equals_int("Category"), "includeHidden": _INCLUDE_HIDDEN},
)
PROVIDERS = Resource(
    "providers",
    "ProvNum",
    {"ClinicNum": _ANY_CLINIC, "DateTStamp": _stamp_since("DateTStamp")},
)
CLINICS = Resource("clinics", "ClinicNum", always=~pl.col("IsHidden"))
OPERATORIES = Resource("operatories", "OperatoryNum", {"ClinicNum": _equals_int("ClinicNum")})
COMMLOGS = Resource(
    "commlogs",
    "CommlogNum",
    {"PatNum": _equals_int("PatNum"), "DateTStamp": _stamp_since("DateTStamp")},
)

LIST_ROUTES: dict[str, Resource] = {
    "/patients/Simple": PATIENTS,
    "/appointments": APPOINTMENTS,
    "/payments": PAYMENTS,
    "/paysplits": PAYSPLITS,
    "/adjustments": ADJUSTMENTS,
    "/definitions": DEFINITIONS,
    "/providers": PROVIDERS,
    "/clinics": CLINICS,
    "/operatories": OPERATORIES,
    "/commlogs": COMMLOGS,
}
ITEM_ROUTES: dict[str, Resource] = {
    "/patients": PATIENTS,
    "/appointments": APPOINTMENTS,
    "/operatories": OPERATORIES,
    "/commlogs": COMMLOGS,
}


# --- query parameters --------------------------------------------------------------------


def _query(request: Request) -> dict[str, str]:
    # ASP.NET binds query parameters case-insensitively; unknown ones are ignored.
    return {key.lower(): value for key, value in request.query_params.multi_items()}


def _param(query: Mapping[str, str], name: str, parse: Callable[[str], Any], expects: str) -> Any:
    text = query.get(name.lower())
    if text is None:
        return None
    try:
        return parse(text)
    except ValueError:
        raise ApiError(400, f"Invalid {name}: expected {expects}.") from None


def _where(resource: Resource, query: Mapping[str, str]) -> pl.Expr | None:
    for name in resource.required:
        if name.lower() not in query:
            raise ApiError(400, f"{name} is required.")
    exprs = [] if resource.always is None else [resource.always]
    for name, spec in resource.filters.items():
        value = _param(query, name, spec.parse, spec.expects)
        value = spec.default if value is None else value
        if value is not None:
            exprs.append(spec.where(value))
    return pl.all_horizontal(exprs) if exprs else None


def _paging(query: Mapping[str, str], max_page_size: int, shift: int) -> tuple[int, int]:
    offset = _param(query, "Offset", parse_int, "an integer >= 0")
    limit = _param(query, "Limit", parse_int, "an integer >= 1")
    offset = 0 if offset is None else offset
    limit = max_page_size if limit is None else limit
    if offset < 0:
        raise ApiError(400, "Invalid Offset: expected an integer >= 0.")
    if limit < 1:
        raise ApiError(400, "Invalid Limit: expected an integer >= 1.")
    return max(0, offset - shift), min(limit, max_page_size)


# --- world access ------------------------------------------------------------------------


class OfficeFrames:
    """Each office's rows of a table sorted by primary key, plus id -> text lookups.

    Rebuilt only when the world swaps (or grows) a table's frame, so a page of a 1M-row table
    costs a filter and a slice, not a sort.
    """

    def __init__(self, world: World) -> None:
        self._world = world
        self._cache: dict[tuple[str, str, str], tuple[pl.DataFrame, int, Any]] = {}

    def _cached(
        self, key: tuple[str, str, str], table: str, build: Callable[[pl.DataFrame], Any]
    ) -> Any:
        with self._world.lock:
            source = self._world.tables[table]
            hit = self._cache.get(key)
            if hit is None or hit[0] is not source or hit[1] != source.height:
                hit = (source, source.height, build(source))
                self._cache[key] = hit
            return hit[2]

    def rows(self, resource: Resource, office: str) -> pl.DataFrame:
        def build(source: pl.DataFrame) -> pl.DataFrame:
            return source.filter(pl.col("office") == office).sort(resource.pk)

        return self._cached((resource.table, office, "rows"), resource.table, build)

    def lookup(self, name: str, office: str) -> dict[int, str]:
        table, key, text = LOOKUP_TABLES[name]

        def build(source: pl.DataFrame) -> dict[int, str]:
            mine = source.filter(pl.col("office") == office)
            return dict(zip(mine[key].to_list(), mine[text].to_list(), strict=True))

        return self._cached((table, office, f"lookup:{name}"), table, build)


# --- gate: auth ------------------------------------------------------------------------


def _authenticate(header: str | None, developer_key: str, offices: Mapping[str, str]) -> str:
    """The customer key of a valid header; never puts the presented keys in the message."""
    if not header:
        raise ApiError(401, f"Missing Authorization header. {_AUTH_SHAPE}")
    scheme, _, credentials = header.strip().partition(" ")
    developer, slash, customer = credentials.strip().partition("/")
    if scheme.upper() != _AUTH_SCHEME or not slash or not developer or not customer:
        raise ApiError(401, f"Malformed Authorization header. {_AUTH_SHAPE}")
    if not hmac.compare_digest(developer.encode(), developer_key.encode()):
        raise ApiError(401, "Invalid or disabled developer key.")
    if customer not in offices:
        raise ApiError(401, "Invalid or disabled customer key.")
    return customer


def _json(payload: Any) -> Response:
    return Response(orjson.dumps(payload), media_type="application/json")


# --- the simulator -----------------------------------------------------------------------


class OpenDentalSimulator:
    def __init__(self, world: World, settings: OpenDentalSimSettings) -> None:
        self.world = world
        self.settings = settings
        self.frames = OfficeFrames(world)
        self.faults = fault_rules.FaultSet()
        self.stats = RequestStats()
        self.throttle = Throttle(settings.requests_per_second, settings.throttle_burst)
        self.offices = {o.customer_key: o.key for o in world.offices_on("opendental")}
        self.written = WriteLog()
        self.writes = OpenDentalWrites(world, settings.writes, self.written)

    async def gate(self, request: Request, call_next: fault_rules.CallNext) -> Response:
        path = request.url.path
        if not path.startswith(f"{API_PREFIX}/"):
            return await call_next(request)
        api_path = path.removeprefix(API_PREFIX)
        response = await self._guarded(request, api_path, call_next)
        self.stats.record(api_path, response.status_code)
        return response

    async def _guarded(
        self, request: Request, api_path: str, call_next: fault_rules.CallNext
    ) -> Response:
        try:
            header = request.headers.get("authorization")
            customer = _authenticate(header, self.settings.developer_key, self.offices)
        except ApiError as error:
            return error.response()
        if not self.throttle.allow(customer):
            return self._throttled()
        request.state.office = self.offices[customer]
        rule = self.faults.take(api_path, request.state.office, request.method)
        if rule is None:
            return await call_next(request)
        return await fault_rules.apply(rule, request, call_next)

    def _throttled(self) -> Response:
        rate = self.settings.requests_per_second
        headers = {}
        if self.settings.throttle_retry_after is not None:
            headers["Retry-After"] = str(self.settings.throttle_retry_after)
        return PlainTextResponse(
            f"Too many requests: the limit is {rate:g} requests per second per customer key.",
            status_code=self.settings.throttle_status,
            headers=headers,
        )

    def _render(self, resource: Resource, office: str, page: pl.DataFrame) -> list[dict]:
        renderer = RowRenderer(resource.table, page.schema)
        lookups = {name: self.frames.lookup(name, office) for name in renderer.lookups_needed}
        with self.world.lock:
            now = self.world.office_now(office)
        return renderer.render(page.select(renderer.columns).iter_rows(), lookups, now)

    def list_page(self, resource: Resource, request: Request) -> Response:
        query = _query(request)
        where = _where(resource, query)
        shift = getattr(request.state, fault_rules.OFFSET_SHIFT_STATE, 0)
        offset, limit = _paging(query, self.settings.max_page_size, shift)
        office = request.state.office
        rows = self.frames.rows(resource, office)
        if where is not None:
            rows = rows.filter(where)
        return _json(self._render(resource, office, rows.slice(offset, limit)))

    def item(self, resource: Resource, request: Request, item_id: str) -> Response:
        try:
            key = parse_int(item_id)
        except ValueError:
            raise ApiError(400, f"Invalid {resource.pk}: expected an integer.") from None
        office = request.state.office
        found = self.frames.rows(resource, office).filter(pl.col(resource.pk) == key)
        if found.is_empty():
            raise ApiError(404, f"{resource.pk} {key} not found.")
        return _json(self._render(resource, office, found.head(1))[0])

    def created(self, resource: Resource, request: Request, key: int) -> Response:
        """201 with the new object and its ``Location``, as Open Dental answers a POST."""
        office = request.state.office
        found = self.frames.rows(resource, office).filter(pl.col(resource.pk) == key)
        location = f"{str(request.url.replace(query=None)).rstrip('/')}/{key}"
        return Response(
            orjson.dumps(self._render(resource, office, found)[0]),
            status_code=201,
            media_type="application/json",
            headers={"Location": location},
        )

    def post_payment(self, request: Request, raw: bytes) -> Response:
        key = self.writes.post_payment(request.state.office, parse_body(raw))
        return self.created(PAYMENTS, request, key)

    def post_commlog(self, request: Request, raw: bytes) -> Response:
        key = self.writes.post_commlog(request.state.office, parse_body(raw))
        return self.created(COMMLOGS, request, key)

    def put_confirm(self, request: Request, raw: bytes, item_id: str) -> Response:
        apt_num = _path_int("AptNum", item_id)
        self.writes.confirm(request.state.office, apt_num, parse_body(raw))
        return PlainTextResponse("", status_code=200)

    def put_break(self, request: Request, raw: bytes, item_id: str) -> Response:
        apt_num = _path_int("AptNum", item_id)
        self.writes.break_appointment(request.state.office, apt_num, parse_body(raw))
        return PlainTextResponse("", status_code=200)


def _path_int(name: str, text: str) -> int:
    try:
        return parse_int(text)
    except ValueError:
        raise ApiError(400, f"Invalid {name}: expected an integer.") from None


# --- routes ------------------------------------------------------------------------------


def _list_endpoint(sim: OpenDentalSimulator, resource: Resource):
    async def endpoint(request: Request) -> Response:
        # Polars work runs off the event loop: a cache rebuild must not stall other requests.
        return await asyncio.to_thread(sim.list_page, resource, request)

    return endpoint


def _item_endpoint(sim: OpenDentalSimulator, resource: Resource):
    async def endpoint(request: Request, item_id: str) -> Response:
        return await asyncio.to_thread(sim.item, resource, request, item_id)

    return endpoint


def _write_endpoint(handler: Callable[[Request, bytes], Response]):
    async def endpoint(request: Request) -> Response:
        return await asyncio.to_thread(handler, request, await request.body())

    return endpoint


def _item_write_endpoint(handler: Callable[[Request, bytes, str], Response]):
    async def endpoint(request: Request, item_id: str) -> Response:
        return await asyncio.to_thread(handler, request, await request.body(), item_id)

    return endpoint


def _api_router(sim: OpenDentalSimulator) -> APIRouter:
    router = APIRouter(prefix=API_PREFIX)
    # Lists first, so /patients/Simple is not taken for a PatNum.
    for path, resource in LIST_ROUTES.items():
        router.add_api_route(path, _list_endpoint(sim, resource), methods=["GET"])
    for path, resource in ITEM_ROUTES.items():
        router.add_api_route(f"{path}/{{item_id}}", _item_endpoint(sim, resource), methods=["GET"])
    router.add_api_route("/payments", _write_endpoint(sim.post_payment), methods=["POST"])
    router.add_api_route("/commlogs", _write_endpoint(sim.post_commlog), methods=["POST"])
    router.add_api_route(
        "/appointments/{item_id}/Confirm", _item_write_endpoint(sim.put_confirm), methods=["PUT"]
    )
    router.add_api_route(
        "/appointments/{item_id}/Break", _item_write_endpoint(sim.put_break), methods=["PUT"]
    )
    return router


def create_app(world: World, settings: OpenDentalSimSettings | None = None) -> FastAPI:
    sim = OpenDentalSimulator(world, settings or OpenDentalSimSettings())
    app = FastAPI(
        title="Open Dental API simulator", openapi_url=None, docs_url=None, redoc_url=None
    )
    app.state.world = world
    app.state.settings = sim.settings
    app.state.faults = sim.faults
    app.state.stats = sim.stats
    app.middleware("http")(sim.gate)
    app.include_router(_api_router(sim))
    admin = admin_router(world, sim.faults, sim.stats, world.export_truth)

    @admin.get("/written")
    async def written() -> dict[str, Any]:
        return sim.written.snapshot()

    app.include_router(admin)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> Response:
        return error.response()

    @app.exception_handler(WriteError)
    async def write_error(_: Request, error: WriteError) -> Response:
        return ApiError(error.status, error.message).response()

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> Response:
        return PlainTextResponse(str(error.detail), error.status_code, headers=error.headers)

    return app
