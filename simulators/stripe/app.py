"""Stripe API simulator: the group's processor account (``simulators.stripe.data``) over ``/v1``.

Every API request passes the gate: auth (``Authorization: Bearer {secret key}``, or HTTP Basic
with the key as user name, as Stripe accepts both), a token-bucket throttle per key, then any
scripted fault. Lists are newest first (``created`` descending) in Stripe's envelope
``{object: "list", data, has_more, url}`` and page by object id (``starting_after`` /
``ending_before``, ``limit`` 1-100, default 10). Errors are ``{error: {type, code, message,
param}}``. Admin endpoints under ``/_sim`` (loopback only, no auth) script faults, advance the
world and export the derived truth.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from simulators import faults as fault_rules
from simulators.admin import admin_router, frames_exporter
from simulators.gate import RequestStats, Throttle
from simulators.stripe.data import StripeData, StripeDataSettings, derive
from simulators.world import World

API_PREFIX = "/v1"
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


@dataclass
class StripeSimSettings:
    api_key: str = "sk_test_simulator"
    # Stripe's documented read limit: 100 requests/s in live mode, 25/s in test mode.
    requests_per_second: float | None = 25.0
    throttle_burst: float = 25.0
    # Unconfirmed whether Stripe sends Retry-After on 429; None sends none.
    throttle_retry_after: int | None = None
    max_page_size: int = 100
    data: StripeDataSettings = field(default_factory=StripeDataSettings)


class StripeError(Exception):
    """An error answered with Stripe's ``{error: {type, code, message, param}}`` body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.code = code
        self.param = param

    def response(self, headers: dict[str, str] | None = None) -> Response:
        error = {"type": self.kind, "code": self.code, "message": self.message, "param": self.param}
        body = {"error": {k: v for k, v in error.items() if v is not None}}
        return JSONResponse(body, status_code=self.status, headers=headers)


# --- resources -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Resource:
    name: str  # the object name in "No such <name>" errors
    # Equality filters: query parameter -> field of the API object.
    filters: dict[str, str] = field(default_factory=dict)


RESOURCES = {
    "/charges": Resource("charge"),
    "/refunds": Resource("refund", {"charge": "charge"}),
    "/disputes": Resource("dispute", {"charge": "charge"}),
    "/balance_transactions": Resource(
        "balance_transaction", {"type": "type", "source": "source", "currency": "currency"}
    ),
    "/payouts": Resource("payout", {"status": "status"}),
}


class Listing:
    """A resource's objects newest first, with their sort keys for cursor lookups."""

    def __init__(self, objects: list[dict]) -> None:
        # Stripe lists newest first; ids break ties so the order is total and stable.
        self.objects = sorted(objects, key=lambda o: (o["created"], o["id"]), reverse=True)
        self.keys = [(-o["created"], _desc(o["id"])) for o in self.objects]
        self.by_id = {o["id"]: o for o in self.objects}


def _desc(text: str) -> tuple[int, ...]:
    return tuple(-ord(ch) for ch in text)


class Snapshot:
    """The derived account rendered as API objects, rebuilt when the world changes."""

    def __init__(self, data: StripeData) -> None:
        self.data = data
        self.lists = {
            "/charges": Listing([data.charge_object(c) for c in data.charges]),
            "/refunds": Listing([data.refund_object(r) for r in data.refunds]),
            "/disputes": Listing([data.dispute_object(d) for d in data.disputes]),
            "/balance_transactions": Listing(
                [data.balance_transaction_object(t) for t in data.balance_transactions]
            ),
            "/payouts": Listing([data.payout_object(p) for p in data.payouts]),
        }


class DerivedCache:
    """Re-derives only when the world's clock or the frames it derives from change (payments
    and definitions; patients, whom online payments name)."""

    def __init__(self, world: World, build: Callable[[World], Any]) -> None:
        self._world, self._build = world, build
        self._key: tuple | None = None
        self._value: Any = None
        self._lock = threading.Lock()

    def get(self) -> Any:
        with self._lock, self._world.lock:
            tables = self._world.tables
            frames = ("payments", "definitions", "patients")
            key = (self._world.now_utc, *(id(tables[t]) for t in frames))
            key += (tables["payments"].height,)
            if key != self._key:
                self._value, self._key = self._build(self._world), key
            return self._value


# --- query parameters ----------------------------------------------------------------------


def _int_param(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise StripeError(
            400, f"Invalid integer: {text[:40]}", code="parameter_invalid_integer", param=name
        ) from None


def _created_bounds(query: dict[str, str]) -> tuple[int | None, int | None]:
    """``created`` / ``created[gte|gt|lte|lt]`` as inclusive (low, high) bounds."""
    low = high = None
    if "created" in query:
        low = high = _int_param("created", query["created"])
    for op, adjust in (("gte", 0), ("gt", 1)):
        if f"created[{op}]" in query:
            value = _int_param(f"created[{op}]", query[f"created[{op}]"]) + adjust
            low = value if low is None else max(low, value)
    for op, adjust in (("lte", 0), ("lt", -1)):
        if f"created[{op}]" in query:
            value = _int_param(f"created[{op}]", query[f"created[{op}]"]) + adjust
            high = value if high is None else min(high, value)
    return low, high


def _limit(query: dict[str, str], cap: int) -> int:
    if "limit" not in query:
        return 10
    limit = _int_param("limit", query["limit"])
    if not 1 <= limit <= cap:
        raise StripeError(
            400,
            f"Invalid limit: must be between 1 and {cap}",
            code="parameter_invalid_integer",
            param="limit",
        )
    return limit


# --- the simulator -------------------------------------------------------------------------


class StripeSimulator:
    def __init__(self, world: World, settings: StripeSimSettings) -> None:
        self.world = world
        self.settings = settings
        self.cache = DerivedCache(world, lambda w: Snapshot(derive(w, settings.data)))
        self.faults = fault_rules.FaultSet()
        self.stats = RequestStats()
        self.throttle = Throttle(settings.requests_per_second, settings.throttle_burst)

    def snapshot(self) -> Snapshot:
        return self.cache.get()

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
            key = self._authenticate(request.headers.get("authorization"))
        except StripeError as error:
            return error.response()
        if not self.throttle.allow(key):
            return self._throttled()
        rule = self.faults.take(api_path)
        if rule is None:
            return await call_next(request)
        if rule.kind == "corrupt":
            return await corrupt_first_record(await call_next(request), rule, "data")
        return await fault_rules.apply(rule, request, call_next)

    def _authenticate(self, header: str | None) -> str:
        """The presented key if valid; errors never echo it."""
        if not header:
            raise StripeError(
                401,
                "You did not provide an API key. Provide it in the Authorization header, "
                "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
            )
        scheme, _, credentials = header.strip().partition(" ")
        key = credentials.strip()
        if scheme.lower() == "basic":
            try:
                key = base64.b64decode(key).decode().partition(":")[0]
            except (ValueError, UnicodeDecodeError):
                key = ""
        elif scheme.lower() != "bearer":
            key = ""
        if not hmac.compare_digest(key.encode(), self.settings.api_key.encode()):
            raise StripeError(401, "Invalid API Key provided.")
        return key

    def _throttled(self) -> Response:
        retry = self.settings.throttle_retry_after
        headers = {"Retry-After": str(retry)} if retry is not None else None
        error = StripeError(
            429,
            "Request rate limit exceeded. Learn more about rate limits here "
            "https://stripe.com/docs/rate-limits.",
            code="rate_limit",
        )
        return error.response(headers)

    def list_page(self, path: str, request: Request) -> Response:
        resource = RESOURCES[path]
        query = dict(request.query_params.multi_items())
        limit = _limit(query, self.settings.max_page_size)
        snapshot = self.snapshot()
        listing = snapshot.lists[path]
        objects = listing.objects
        if path == "/balance_transactions" and "payout" in query:
            objects = self._itemized(snapshot, query["payout"])
        objects = _filtered(objects, resource, query)
        after, before = query.get("starting_after"), query.get("ending_before")
        if after and before:
            raise StripeError(
                400, "You may only specify one of these parameters: ending_before, starting_after."
            )
        keys = [(-o["created"], _desc(o["id"])) for o in objects]
        if after:
            start = bisect_right(keys, _cursor_key(listing, resource, after, "starting_after"))
            page = objects[start : start + limit]
            has_more = start + limit < len(objects)
        elif before:
            end = bisect_left(keys, _cursor_key(listing, resource, before, "ending_before"))
            page = objects[max(0, end - limit) : end]
            has_more = end - limit > 0
        else:
            page, has_more = objects[:limit], len(objects) > limit
        body = {"object": "list", "data": page, "has_more": has_more, "url": f"{API_PREFIX}{path}"}
        return Response(orjson.dumps(body), media_type="application/json")

    def _itemized(self, snapshot: Snapshot, payout_id: str) -> list[dict]:
        payout = snapshot.data.payouts_by_id.get(payout_id)
        if payout is None:
            raise StripeError(
                404, f"No such payout: '{payout_id[:40]}'", code="resource_missing", param="payout"
            )
        listing = snapshot.lists["/balance_transactions"]
        ids = {t.id for t in snapshot.data.itemized(payout)}
        return [o for o in listing.objects if o["id"] in ids]


def _filtered(objects: list[dict], resource: Resource, query: dict[str, str]) -> list[dict]:
    low, high = _created_bounds(query)
    equals = {f: query[p] for p, f in resource.filters.items() if p in query}
    if low is None and high is None and not equals:
        return objects
    return [
        o
        for o in objects
        if (low is None or o["created"] >= low)
        and (high is None or o["created"] <= high)
        and all(o.get(f) == v for f, v in equals.items())
    ]


def _cursor_key(listing: Listing, resource: Resource, object_id: str, param: str) -> tuple:
    found = listing.by_id.get(object_id)
    if found is None:
        raise StripeError(
            400,
            f"No such {resource.name}: '{object_id[:40]}'",
            code="resource_missing",
            param=param,
        )
    return (-found["created"], _desc(found["id"]))


async def corrupt_first_record(response: Response, rule: fault_rules.FaultRule, key: str):
    """The "corrupt" fault for envelope bodies: overwrite a field of the first listed record."""
    body = b"".join([chunk async for chunk in response.body_iterator])  # type: ignore[attr-defined]
    if response.status_code != 200:
        return Response(body, status_code=response.status_code, media_type="application/json")
    payload = orjson.loads(body)
    records = _records_in(payload, key)
    if records:
        records[0][rule.record_field] = rule.value
    return Response(orjson.dumps(payload), media_type="application/json")


def _records_in(payload: Any, key: str) -> list[dict]:
    """The record list under ``key`` (a dotted path; "*" takes the first value of a dict)."""
    node = payload
    for part in key.split("."):
        if not isinstance(node, dict) or not node:
            return []
        node = next(iter(node.values())) if part == "*" else node.get(part)
    return node if isinstance(node, list) else []


# --- routes --------------------------------------------------------------------------------


def _list_endpoint(sim: StripeSimulator, path: str):
    async def endpoint(request: Request) -> Response:
        return await asyncio.to_thread(sim.list_page, path, request)

    return endpoint


def create_app(world: World, settings: StripeSimSettings | None = None) -> FastAPI:
    sim = StripeSimulator(world, settings or StripeSimSettings())
    app = FastAPI(title="Stripe API simulator", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.world = world
    app.state.settings = sim.settings
    app.state.faults = sim.faults
    app.state.stats = sim.stats
    app.state.sim = sim
    app.middleware("http")(sim.gate)
    router = APIRouter(prefix=API_PREFIX)
    for path in RESOURCES:
        router.add_api_route(path, _list_endpoint(sim, path), methods=["GET"])
    app.include_router(router)
    app.include_router(
        admin_router(
            world, sim.faults, sim.stats, frames_exporter(lambda: sim.snapshot().data.frames())
        )
    )

    @app.exception_handler(StripeError)
    async def stripe_error(_: Request, error: StripeError) -> Response:
        return error.response()

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> Response:
        kind = "invalid_request_error" if error.status_code < 500 else "api_error"
        return StripeError(error.status_code, str(error.detail), kind=kind).response()

    return app
