"""NexHealth Synchronizer API simulator: serves the world's NexHealth offices (pms="nexhealth").

Contract (vendor-apis.md section 3, v20240412 OAS): ``POST /authenticates`` with the API key in
``Authorization`` answers 201 with a bearer token that expires (``token_ttl_s``); every other call
needs ``Authorization: Bearer <token>`` (401 otherwise), the ``Nex-Api-Version`` header and the
``subdomain`` of an institution the key may access (403 otherwise). Offices sharing a subdomain
are the locations of one institution. Lists page with cursors (``end_cursor`` forward,
``start_cursor`` back, ``per_page`` up to 1000) in ``sort`` order (id by default) and filter by
``updated_since``. Every answer is the envelope ``{code, data, description, error, page_info?,
count?}``. Requests are throttled per API key (GET /appointments has its own, lower rate).

The gate also applies the shared fault rules (``simulators.faults``). NexHealth wraps records in
an envelope, so a "corrupt" rule writes ``record_field`` into the page's first record, or, when
it is named ``envelope.<key>``, overwrites that key of the envelope (``envelope.data`` = [] gives
an empty page that still says ``has_next_page``). A "shift" rule starts the page that many rows
before the ``end_cursor`` (rows seen twice across pages).

Writes (``simulators.nexhealth.writes``): ``POST /payments``, ``PATCH /appointments/{id}``, read
back with ``GET /appointments/{id}``, ``GET /payments?patient_id=&transaction_id=`` and ``GET
/payment_types``; ``GET /_sim/written`` lists what was written.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import polars as pl
from fastapi import APIRouter, FastAPI, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response

from simulators import faults as fault_rules
from simulators.admin import admin_router
from simulators.gate import RequestStats, Throttle
from simulators.nexhealth import data, wire
from simulators.nexhealth.writes import NexHealthWrites
from simulators.opendental.writes import WriteError, WriteLog
from simulators.world import World

DEFAULT_API_KEY = "sim-nexhealth-api-key"
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


@dataclass
class NexHealthSimSettings:
    # API key -> the subdomains it may access (None = every institution of the world).
    api_keys: dict[str, tuple[str, ...] | None] = field(
        default_factory=lambda: {DEFAULT_API_KEY: None}
    )
    token_ttl_s: float = 3600.0  # 1 h in production (24 h in the sandbox)
    api_versions: tuple[str, ...] = ("v20240412", "v3.0.0")  # two names of one version
    # The OAS marks Nex-Api-Version required but gives it a default: unconfirmed whether a call
    # without it fails, so the strict reading is a setting.
    require_api_version: bool = True
    # Documented per key: 100 requests/s, GET /appointments 10/s (None turns a limit off). The
    # per-minute quotas (1,000/min patients+appointments, 2,000/min others) are not simulated.
    requests_per_second: float | None = 100.0
    appointments_requests_per_second: float | None = 10.0
    throttle_burst: float = 1.0
    throttle_retry_after: int | None = None  # unconfirmed whether 429s carry Retry-After
    # The OAS says per_page defaults to 5, the pagination guide 1000; the maximum is 1000.
    # Unconfirmed whether a larger per_page fails or is capped: we cap.
    default_per_page: int = 5
    max_per_page: int = 1000
    ehr: str = "dentrix"  # the PMS behind every location (foreign_id_type), unless...
    ehr_by_office: dict[str, str] = field(default_factory=dict)  # ...overridden per office
    own_guarantor_zero: bool = False  # see wire.WireOptions


class ApiError(Exception):
    """An error answered in NexHealth's envelope: ``{code: false, error: [...]}``."""

    def __init__(self, status: int, *messages: str) -> None:
        super().__init__("; ".join(messages))
        self.status = status
        self.messages = list(messages)

    def response(self) -> Response:
        body = {
            "code": False,
            "data": None,
            "description": self.messages[0],
            "error": self.messages,
        }
        return Response(orjson.dumps(body), status_code=self.status, media_type="application/json")


def _json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


def _envelope(records: Any, **extra: Any) -> dict[str, Any]:
    return {"code": True, "description": "", "error": [], "data": records, **extra}


# --- tokens --------------------------------------------------------------------------------


class TokenStore:
    """Opaque bearer tokens, each tied to the API key that asked for it, valid ``ttl`` seconds."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def issue(self, api_key: str) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = (api_key, time.monotonic() + self.ttl)
        return token

    def owner(self, token: str) -> str | None:
        with self._lock:
            entry = self._tokens.get(token)
            if entry is None or entry[1] <= time.monotonic():
                self._tokens.pop(token, None)
                return None
            return entry[0]

    def expire_all(self) -> int:
        with self._lock:
            count = len(self._tokens)
            self._tokens.clear()
        return count


# --- resources and query parameters --------------------------------------------------------


@dataclass(frozen=True)
class Resource:
    entity: str
    # "required": location_id must be given; "optional": all of the institution when absent;
    # "or_foreign_id": location_id or foreign_id (GET /appointments).
    location: str
    window: bool = False  # GET /appointments requires start and end (on start_time)
    flags: tuple[str, ...] = ()  # boolean record fields that filter when given
    # Record fields that filter by equality when given: (name, "int" | "text").
    equals: tuple[tuple[str, str], ...] = ()


RESOURCES: dict[str, Resource] = {
    "/patients": Resource("patients", "required", flags=("inactive",)),
    "/appointments": Resource(
        "appointments", "or_foreign_id", window=True, flags=("cancelled", "unavailable")
    ),
    "/payments": Resource(
        "payments", "required", equals=(("patient_id", "int"), ("transaction_id", "text"))
    ),
    "/operatories": Resource("operatories", "required"),
    "/providers": Resource("providers", "optional", flags=("inactive",)),
}
SORT_COLUMNS = {"id": "id", "updated_at": "_u"}


def _parse_time(name: str, text: str) -> int:
    """An ISO-8601 date or date-time (no offset = UTC) as epoch microseconds."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ApiError(400, f"Invalid parameter {name}: expected an ISO-8601 date/time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000)


def _parse_int(name: str, text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise ApiError(400, f"Invalid parameter {name}: expected an integer") from None


def _parse_bool(name: str, text: str | None) -> bool | None:
    if text is None:
        return None
    if text.lower() not in ("true", "false"):
        raise ApiError(400, f"Invalid parameter {name}: expected true or false")
    return text.lower() == "true"


def _encode_cursor(sort: str, values: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([sort, *values])).decode().rstrip("=")


def _decode_cursor(name: str, text: str | None, sort: str) -> list[Any] | None:
    if not text:
        return None
    try:
        decoded = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError):
        raise ApiError(400, f"Invalid parameter {name}") from None
    if not isinstance(decoded, list) or len(decoded) < 2 or decoded[0] != sort:
        raise ApiError(400, f"Invalid parameter {name}: it belongs to another sort order")
    return decoded[1:]


def _beyond(keys: list[str], values: list[Any], descending: bool) -> pl.Expr:
    """Rows strictly after the cursor row in the sort order (lexicographic on ``keys``)."""

    def later(key: str, value: Any) -> pl.Expr:
        return pl.col(key) < value if descending else pl.col(key) > value

    *head, last = zip(keys, values, strict=True)
    expr = later(*last)
    for key, value in reversed(head):
        expr = later(key, value) | ((pl.col(key) == value) & expr)
    return expr


def _at(keys: list[str], values: list[Any]) -> pl.Expr:
    return pl.all_horizontal([pl.col(k) == v for k, v in zip(keys, values, strict=True)])


# --- world access --------------------------------------------------------------------------

Builder = Callable[[dict[str, pl.DataFrame], data.Location, wire.WireOptions], pl.DataFrame]
BUILDERS: dict[str, tuple[tuple[str, ...], Builder]] = {
    "patients": (("patients",), lambda t, loc, o: wire.patients_frame(t["patients"], loc, o)),
    "appointments": (
        ("appointments", "truth_appointments", "providers", "definitions"),
        lambda t, loc, o: wire.appointments_frame(
            t["appointments"], t["truth_appointments"], t["providers"], t["definitions"], loc
        ),
    ),
    "providers": (
        ("providers", "definitions"),
        lambda t, loc, o: wire.providers_frame(t["providers"], t["definitions"], loc),
    ),
    "operatories": (
        ("operatories",),
        lambda t, loc, o: wire.operatories_frame(t["operatories"], loc),
    ),
    "payments": (
        ("payments", "patients", "nexhealth_transactions"),
        lambda t, loc, o: wire.payments_frame(
            t["payments"], t["patients"], loc, o, t["nexhealth_transactions"]
        ),
    ),
}
# Source tables the simulator keeps itself (what NexHealth holds that the world does not).
OWN_TABLES = ("nexhealth_transactions",)


class LocationFrames:
    """Each location's NexHealth records of one entity, sorted by id, rebuilt only when one of
    the world tables they come from is swapped (the world replaces a frame on every edit)."""

    def __init__(
        self,
        world: World,
        options: wire.WireOptions,
        own: Callable[[str], pl.DataFrame] | None = None,
    ) -> None:
        self._world = world
        self._options = options
        self._own = own  # the simulator's own tables (OWN_TABLES) by name
        self._cache: dict[tuple[str, int], tuple[tuple[pl.DataFrame, ...], pl.DataFrame]] = {}
        self._lock = threading.Lock()

    def get(self, entity: str, location: data.Location) -> pl.DataFrame:
        tables, build = BUILDERS[entity]
        with self._world.lock:
            sources = tuple(
                self._own(t) if t in OWN_TABLES and self._own else self._world.tables[t]
                for t in tables
            )
        with self._lock:
            hit = self._cache.get((entity, location.id))
        if hit is not None and all(a is b for a, b in zip(hit[0], sources, strict=True)):
            return hit[1]
        office = pl.col("office") == location.office
        mine = {t: f.filter(office) for t, f in zip(tables, sources, strict=True)}
        frame = build(mine, location, self._options).sort("id")
        with self._lock:
            self._cache[(entity, location.id)] = (sources, frame)
        return frame


# --- the simulator -------------------------------------------------------------------------


class NexHealthSimulator:
    def __init__(self, world: World, settings: NexHealthSimSettings) -> None:
        self.world = world
        self.settings = settings
        self.locations = data.locations(world, settings.ehr_by_office, settings.ehr)
        self.by_id = {loc.id: loc for loc in self.locations}
        self.written = WriteLog()
        self.writes = NexHealthWrites(world, self.locations, self.written)
        self.frames = LocationFrames(
            world, wire.WireOptions(settings.own_guarantor_zero), self._own_table
        )
        self.tokens = TokenStore(settings.token_ttl_s)
        self.faults = fault_rules.FaultSet()
        self.stats = RequestStats()
        self.throttle = Throttle(settings.requests_per_second, settings.throttle_burst)
        self.appointments_throttle = Throttle(
            settings.appointments_requests_per_second, settings.throttle_burst
        )

    # -- gate ----------------------------------------------------------------------------

    async def gate(self, request: Request, call_next: fault_rules.CallNext) -> Response:
        path = request.url.path
        if path.startswith("/_sim"):
            return await call_next(request)
        response = await self._guarded(request, path, call_next)
        self.stats.record(path, response.status_code)
        return response

    async def _guarded(
        self, request: Request, path: str, call_next: fault_rules.CallNext
    ) -> Response:
        try:
            self._check_version(request)
            api_key = request.state.api_key = self._caller(request, path)
            if not self.throttle.allow(api_key) or (
                path == "/appointments" and not self.appointments_throttle.allow(api_key)
            ):
                return self._throttled()
            if path != "/authenticates":
                request.state.subdomain = self._institution(request, api_key, path)
        except ApiError as error:
            return error.response()
        rule = self.faults.take(path, method=request.method)
        if rule is None:
            return await call_next(request)
        if rule.kind == "corrupt":
            return await _corrupted(await call_next(request), rule)
        return await fault_rules.apply(rule, request, call_next)

    def _check_version(self, request: Request) -> None:
        version = request.headers.get("nex-api-version")
        if version is None:
            if self.settings.require_api_version:
                raise ApiError(400, "Missing header Nex-Api-Version")
        elif version not in self.settings.api_versions:
            raise ApiError(400, "Unsupported Nex-Api-Version")

    def _caller(self, request: Request, path: str) -> str:
        """The API key behind the request; never echoes what was presented."""
        header = (request.headers.get("authorization") or "").strip()
        if path == "/authenticates":
            for key in self.settings.api_keys:
                if header and hmac.compare_digest(header.encode(), key.encode()):
                    return key
            raise ApiError(401, "Invalid API key")
        scheme, _, token = header.partition(" ")
        owner = self.tokens.owner(token.strip()) if scheme.lower() == "bearer" else None
        if owner is None:
            raise ApiError(401, "Unauthorized: missing, invalid or expired bearer token")
        return owner

    def _institution(self, request: Request, api_key: str, path: str) -> str | None:
        subdomain = request.query_params.get("subdomain")
        if not subdomain:
            if path == "/locations":  # optional there: every institution the key can see
                return None
            raise ApiError(400, "Missing parameter subdomain")
        allowed = self.settings.api_keys[api_key]
        known = any(loc.subdomain == subdomain for loc in self.locations)
        if not known or (allowed is not None and subdomain not in allowed):
            raise ApiError(403, "You don't have access to this institution")
        return subdomain

    def _throttled(self) -> Response:
        headers = {}
        if self.settings.throttle_retry_after is not None:
            headers["Retry-After"] = str(self.settings.throttle_retry_after)
        body = ApiError(429, "Rate limit exceeded").response()
        body.headers.update(headers)
        return body

    # -- endpoints -----------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response:
        token = self.tokens.issue(request.state.api_key)
        return _json(
            {"code": True, "data": {"token": token}, "description": "Authenticated", "error": []},
            status=201,
        )

    def list_locations(self, request: Request) -> Response:
        scope = self.settings.api_keys[request.state.api_key]
        subdomain = request.state.subdomain
        visible = [
            loc
            for loc in self.locations
            if (subdomain is None or loc.subdomain == subdomain)
            and (scope is None or loc.subdomain in scope)
        ]
        with self.world.lock:
            now = self.world.now_utc
        institutions: dict[str, dict[str, Any]] = {}
        for loc in visible:
            office = self.world.office(loc.office)
            entry = institutions.setdefault(
                loc.subdomain,
                {
                    "id": loc.institution_id,
                    "name": data.institution_name(loc.subdomain),
                    "subdomain": loc.subdomain,
                    "locations": [],
                },
            )
            entry["locations"].append(
                wire.location_record(loc, data.location_address(office, loc.id), now)
            )
        listed = list(institutions.values())
        return _json(_envelope(listed, count=len(listed)))

    def list_appointment_types(self, request: Request) -> Response:
        locations = self._locations(request, "optional")
        types = [t for loc in locations for t in data.appointment_types(loc)]
        return _json(_envelope(types, count=len(types)))

    def list_payment_types(self, request: Request) -> Response:
        [location] = self._locations(request, "required")
        definitions = self.world.table("definitions", location.office)
        types = wire.payment_type_records(definitions, location)
        return _json(_envelope(types, count=len(types)))

    # -- writes (simulators.nexhealth.writes) ----------------------------------------------

    def _own_table(self, name: str) -> pl.DataFrame:
        if name != "nexhealth_transactions":
            raise KeyError(name)
        return self.writes.transactions

    def _record(self, entity: str, location: data.Location, record_id: int) -> dict[str, Any]:
        frame = self.frames.get(entity, location).filter(pl.col("id") == record_id)
        if frame.is_empty():
            raise ApiError(404, f"{entity[:-1].capitalize()} not found")
        return wire.records(frame)[0]

    def post_payment(self, request: Request, body: Any) -> Response:
        [location] = self._locations(request, "required")
        payment_id = self.writes.post_payment(location, _object(body))
        return _json(_envelope(self._record("payments", location, payment_id)), status=201)

    def patch_appointment(self, request: Request, body: Any, item_id: str) -> Response:
        appointment_id = _path_id(item_id)
        self._appointment_location(request, appointment_id)
        self.writes.patch_appointment(appointment_id, _object(body))
        return self.get_appointment(request, item_id)

    def get_appointment(self, request: Request, item_id: str) -> Response:
        appointment_id = _path_id(item_id)
        location = self._appointment_location(request, appointment_id)
        return _json(_envelope(self._record("appointments", location, appointment_id)))

    def _appointment_location(self, request: Request, appointment_id: int) -> data.Location:
        location, _ = self.writes.locate_appointment(appointment_id)
        if location.subdomain != request.state.subdomain:
            raise ApiError(404, "Appointment not found")
        return location

    def _locations(self, request: Request, rule: str) -> list[data.Location]:
        query = request.query_params
        location_id = _parse_int("location_id", query.get("location_id"))
        mine = [loc for loc in self.locations if loc.subdomain == request.state.subdomain]
        if location_id is None:
            if rule == "required" or (rule == "or_foreign_id" and not query.get("foreign_id")):
                raise ApiError(400, "Missing parameter location_id")
            return mine
        found = [loc for loc in mine if loc.id == location_id]
        if not found:
            raise ApiError(404, "Location not found in this institution")
        return found

    def list_page(self, resource: Resource, request: Request) -> Response:
        query = request.query_params
        locations = self._locations(request, resource.location)
        frames = [self.frames.get(resource.entity, loc) for loc in locations]
        frame = pl.concat(frames, how="vertical_relaxed") if len(frames) > 1 else frames[0]
        where = self._filters(resource, query)
        if where:
            frame = frame.filter(where)
        shift = getattr(request.state, fault_rules.OFFSET_SHIFT_STATE, 0)
        page, page_info = self._paginate(frame, query, shift)
        return _json(_envelope(wire.records(page), page_info=page_info))

    def _filters(self, resource: Resource, query: Mapping[str, str]) -> list[pl.Expr]:
        where = []
        since = query.get("updated_since")
        if since:
            where.append(pl.col("_u") >= _parse_time("updated_since", since))
        if query.get("foreign_id"):
            where.append(pl.col("foreign_id") == query["foreign_id"])
        for name, kind in resource.equals:
            text = query.get(name)
            if text is not None:
                value = _parse_int(name, text) if kind == "int" else text
                where.append(pl.col(name) == value)
        for flag in resource.flags:
            value = _parse_bool(flag, query.get(flag))
            if value is not None:
                where.append(pl.col(flag) == value)
        if resource.window:
            missing = [
                f"Missing parameter {name}" for name in ("start", "end") if not query.get(name)
            ]
            if missing:
                raise ApiError(400, *missing)
            where.append(pl.col("_start") >= _parse_time("start", query["start"]))
            where.append(pl.col("_start") <= _parse_time("end", query["end"]))
        return where

    def _paginate(
        self, frame: pl.DataFrame, query: Mapping[str, str], shift: int
    ) -> tuple[pl.DataFrame, dict[str, Any]]:
        sort = query.get("sort") or "id"
        column = SORT_COLUMNS.get(sort.removeprefix("-"))
        if column is None:
            raise ApiError(400, f"Invalid parameter sort: use one of {', '.join(SORT_COLUMNS)}")
        descending = sort.startswith("-")
        keys = [column] if column == "id" else [column, "id"]
        frame = frame.sort(keys, descending=descending)
        per_page = _parse_int("per_page", query.get("per_page")) or self.settings.default_per_page
        if per_page < 1:
            raise ApiError(400, "Invalid parameter per_page: expected an integer >= 1")
        per_page = min(per_page, self.settings.max_per_page)
        after = _decode_cursor("end_cursor", query.get("end_cursor"), sort)
        before = _decode_cursor("start_cursor", query.get("start_cursor"), sort)
        start, size = 0, per_page
        if after is not None:
            start = max(0, frame.filter(~_beyond(keys, after, descending)).height - shift)
        elif before is not None:
            position = frame.filter(~_beyond(keys, before, descending) & ~_at(keys, before)).height
            start = max(0, position - per_page)
            size = position - start
        page = frame.slice(start, size)

        def cursor(row: int) -> str | None:
            return _encode_cursor(sort, [page[k][row] for k in keys]) if page.height else None

        return page, {
            "has_previous_page": start > 0,
            "has_next_page": start + page.height < frame.height,
            "start_cursor": cursor(0),
            "end_cursor": cursor(-1),
        }

    # -- truth ---------------------------------------------------------------------------

    def export(self, directory: Path) -> None:
        """The world's tables plus every NexHealth record as served (``nexhealth_<entity>``)."""
        self.world.export_truth(directory)
        for entity in BUILDERS:
            frames = [self.frames.get(entity, loc) for loc in self.locations]
            frame = pl.concat(frames, how="vertical_relaxed")
            frame.select([c for c in frame.columns if not c.startswith("_")]).write_parquet(
                directory / f"nexhealth_{entity}.parquet"
            )
        with self.world.lock:
            now = self.world.now_utc
        locations = [
            wire.location_record(
                loc, data.location_address(self.world.office(loc.office), loc.id), now
            )
            for loc in self.locations
        ]
        pl.DataFrame(locations).write_parquet(directory / "nexhealth_locations.parquet")
        types = [t for loc in self.locations for t in data.appointment_types(loc)]
        pl.DataFrame(types).write_parquet(directory / "nexhealth_appointment_types.parquet")


async def _corrupted(response: Response, rule: fault_rules.FaultRule) -> Response:
    if response.status_code != 200:
        return response
    body = b"".join([chunk async for chunk in response.body_iterator])  # type: ignore[attr-defined]
    envelope = orjson.loads(body)
    if rule.record_field.startswith("envelope."):
        envelope[rule.record_field.removeprefix("envelope.")] = rule.value
    elif isinstance(envelope.get("data"), list) and envelope["data"]:
        first = envelope["data"][0]
        if isinstance(first, dict):
            first[rule.record_field] = rule.value
    return _json(envelope)


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object")
    return body


def _path_id(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ApiError(400, "Invalid parameter id: expected an integer") from None


# --- routes --------------------------------------------------------------------------------


def _threaded(handler: Callable[[Request], Response]):
    async def endpoint(request: Request) -> Response:
        # Polars work runs off the event loop: a cache rebuild must not stall other requests.
        return await asyncio.to_thread(handler, request)

    return endpoint


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return None  # refused by the handler as "not a JSON object"


def _threaded_write(handler: Callable[[Request, Any], Response]):
    async def endpoint(request: Request) -> Response:
        return await asyncio.to_thread(handler, request, await _json_body(request))

    return endpoint


def _threaded_item(handler: Callable[..., Response], *, with_body: bool = False):
    async def endpoint(request: Request, item_id: str) -> Response:
        body = (await _json_body(request),) if with_body else ()
        return await asyncio.to_thread(handler, request, *body, item_id)

    return endpoint


def _api_router(sim: NexHealthSimulator) -> APIRouter:
    router = APIRouter()
    router.add_api_route("/authenticates", _threaded(sim.authenticate), methods=["POST"])
    router.add_api_route("/locations", _threaded(sim.list_locations), methods=["GET"])
    router.add_api_route(
        "/appointment_types", _threaded(sim.list_appointment_types), methods=["GET"]
    )
    router.add_api_route("/payment_types", _threaded(sim.list_payment_types), methods=["GET"])
    for path, resource in RESOURCES.items():
        handler = _threaded(lambda request, r=resource: sim.list_page(r, request))
        router.add_api_route(path, handler, methods=["GET"])
    router.add_api_route("/payments", _threaded_write(sim.post_payment), methods=["POST"])
    item = "/appointments/{item_id}"
    router.add_api_route(item, _threaded_item(sim.get_appointment), methods=["GET"])
    patch = _threaded_item(sim.patch_appointment, with_body=True)
    router.add_api_route(item, patch, methods=["PATCH"])
    return router


def _admin_router(sim: NexHealthSimulator) -> APIRouter:
    router = admin_router(sim.world, sim.faults, sim.stats, sim.export)

    @router.post("/tokens/expire")
    async def expire_tokens() -> dict[str, int]:
        return {"expired": sim.tokens.expire_all()}

    @router.get("/written")
    async def written() -> dict[str, Any]:
        return sim.written.snapshot()

    return router


def create_app(world: World, settings: NexHealthSimSettings | None = None) -> FastAPI:
    sim = NexHealthSimulator(world, settings or NexHealthSimSettings())
    app = FastAPI(title="NexHealth API simulator", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.world = world
    app.state.settings = sim.settings
    app.state.faults = sim.faults
    app.state.stats = sim.stats
    app.state.simulator = sim
    app.middleware("http")(sim.gate)
    app.include_router(_api_router(sim))
    app.include_router(_admin_router(sim))

    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> Response:
        return error.response()

    @app.exception_handler(WriteError)
    async def write_error(_: Request, error: WriteError) -> Response:
        return ApiError(error.status, error.message).response()

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> Response:
        return ApiError(error.status_code, str(error.detail)).response()

    return app
