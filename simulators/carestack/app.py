"""CareStack partner API simulator: serves the world's CareStack accounts under ``/api/v1.0``.

CareStack's partner API is not public (vendor-apis.md section 2): everything below that is not
seen in at least two integrations is a setting of ``CareStackSimSettings``.

Every API request passes the gate: auth (``auth_mode``: the key headers ``VendorKey``,
``AccountKey``, ``AccountId`` on every call, or a Bearer token from the OAuth2 password grant at
``POST /connect/token``; either picks the account), a token-bucket throttle per account, then any
scripted fault (``simulators.faults``; a "corrupt" rule breaks the first record of a page).
Reference lists answer whole JSON arrays; sync feeds answer ``{results, continueToken}`` pages
ordered by (lastModifiedOn, id), where the opaque ``continueToken`` is a keyset position, so rows
changing between pages are never skipped. Admin endpoints under ``/_sim`` (loopback only, no
auth) script faults, drive the world and edit the practice's configuration (a new appointment
status or location).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs

import orjson
import polars as pl
from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.responses import Response

from simulators import faults as fault_rules
from simulators.admin import admin_router
from simulators.carestack import data, wire
from simulators.carestack.wire import API_PREFIX, STAMP, Account
from simulators.gate import RequestStats, Throttle
from simulators.world import World

TOKEN_PATH = "/connect/token"
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_KEY_HEADERS = ("VendorKey", "AccountKey", "AccountId")


@dataclass
class CareStackSimSettings:
    vendor_key: str = "sim-vendor-key"
    # Account id -> account key; accounts not listed use default_account_key(account id).
    account_keys: dict[str, str] = field(default_factory=dict)
    # Unconfirmed which scheme CareStack uses: both seen in integrations.
    auth_mode: Literal["headers", "oauth_password"] = "headers"
    client_id: str = "sim-client"
    client_secret: str = "sim-client-secret"
    token_ttl_s: int = 3600  # reported as expires_in
    # A token also dies after this many API requests (None = never), so a test can force a
    # refresh in the middle of a sync without waiting.
    token_max_requests: int | None = None
    # Unconfirmed: the page size of sync feeds, and where requests and calls are served.
    page_size: int = 100
    appointment_requests_path: str = "/sync/appointment-requests"
    conversation_calls_path: str = "/sync/conversation-calls"
    # No published rate limit: None turns throttling off.
    requests_per_second: float | None = None
    throttle_burst: float = 10.0
    throttle_status: int = 429
    throttle_retry_after: int | None = None  # seconds; None sends no Retry-After header

    def account_key(self, account_id: str) -> str:
        return self.account_keys.get(account_id, default_account_key(account_id))


def default_account_key(account_id: str) -> str:
    return f"sim-key-{account_id}"


class ApiError(Exception):
    """An error answered as ``{"message": ...}`` (CareStack's error body is unknown)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}

    def response(self) -> Response:
        return _json({"message": self.message}, self.status, self.headers)


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(payload), status_code=status, media_type="application/json", headers=headers
    )


# --- continueToken: an opaque keyset position --------------------------------------------


@dataclass(frozen=True)
class Position:
    since: str | None  # the modifiedSince the paging started with
    stamp: datetime
    id: int


def encode_token(position: Position) -> str:
    raw = orjson.dumps([position.since, position.stamp.isoformat(), position.id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(text: str) -> Position:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        since, stamp, key = orjson.loads(raw)
        return Position(since, datetime.fromisoformat(stamp), int(key))
    except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError):
        raise ApiError(400, "Invalid continueToken.") from None


def parse_since(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ApiError(400, "Invalid modifiedSince: expected an ISO-8601 date-time.") from None
    # A time without an offset is taken as UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- feeds -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Feed:
    """A sync feed: builds (wire frame with STAMP, truth frame or None) for one account."""

    name: str
    build: Callable[[CareStackSimulator, Account], tuple[pl.DataFrame, pl.DataFrame | None]]


FEEDS = (
    Feed("patients", lambda sim, account: (wire.patients(sim.world, account), None)),
    Feed(
        "appointments",
        lambda sim, account: (
            wire.appointments(sim.world, account, sim.status_ids(account.id)),
            None,
        ),
    ),
    Feed("appointment_requests", lambda sim, a: data.appointment_requests(sim.world, a)),
    Feed("conversation_calls", lambda sim, a: data.conversation_calls(sim.world, a)),
)


@dataclass
class _Token:
    account: str
    expires_at: float
    uses_left: int | None


class CareStackSimulator:
    def __init__(self, world: World, settings: CareStackSimSettings) -> None:
        self.world = world
        self.settings = settings
        self.accounts = wire.accounts(world)
        self.faults = fault_rules.FaultSet()
        self.stats = RequestStats()
        self.throttle = Throttle(settings.requests_per_second, settings.throttle_burst)
        self._lock = threading.Lock()
        self._tokens: dict[str, _Token] = {}
        # The practice's own configuration, editable through /_sim.
        self.statuses = {
            account: [
                {"Id": i, "Name": name, "IsActive": True} for i, name in wire.APPOINTMENT_STATUSES
            ]
            for account in self.accounts
        }
        self.extra_locations: dict[str, list[dict]] = {account: [] for account in self.accounts}
        self._version = 0
        self._cache: dict[tuple[str, str], tuple[tuple, tuple[pl.DataFrame, ...], Any]] = {}

    # -- auth and the gate ------------------------------------------------------------------

    async def gate(self, request: Request, call_next: fault_rules.CallNext) -> Response:
        path = request.url.path
        if not path.startswith(f"{API_PREFIX}/"):
            return await call_next(request)
        api_path = path.removeprefix(API_PREFIX)
        response = await self._guarded(request, api_path, call_next)
        self.stats.record(api_path, response.status_code)
        return response

    async def _guarded(self, request: Request, api_path: str, call_next) -> Response:
        try:
            account = self.authenticate(request)
        except ApiError as error:
            return error.response()
        if not self.throttle.allow(account):
            return self._throttled()
        request.state.account = account
        rule = self.faults.take(api_path)
        if rule is None:
            return await call_next(request)
        if rule.kind == "corrupt":
            return await _corrupted(await call_next(request), rule)
        return await fault_rules.apply(rule, request, call_next)

    def authenticate(self, request: Request) -> str:
        """The account a request acts for; messages never repeat a presented credential."""
        if self.settings.auth_mode == "oauth_password":
            return self._bearer(request.headers.get("authorization"))
        vendor, key, account = (request.headers.get(h) for h in _KEY_HEADERS)
        if not (vendor and key and account):
            raise ApiError(401, "Missing credentials: send the VendorKey, AccountKey and "
                           "AccountId headers.")  # fmt: skip
        if not hmac.compare_digest(vendor.encode(), self.settings.vendor_key.encode()):
            raise ApiError(401, "Invalid vendor key.")
        expected = self.settings.account_key(account)
        if account not in self.accounts or not hmac.compare_digest(key.encode(), expected.encode()):
            raise ApiError(401, "Invalid account id or account key.")
        return account

    def _bearer(self, header: str | None) -> str:
        scheme, _, token = (header or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "Missing bearer token.", {"WWW-Authenticate": "Bearer"})
        expired = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        with self._lock:
            found = self._tokens.get(token.strip())
            if found is None:
                raise ApiError(401, "Invalid bearer token.", expired)
            if time.monotonic() >= found.expires_at or found.uses_left == 0:
                del self._tokens[token.strip()]
                raise ApiError(401, "The access token expired.", expired)
            if found.uses_left is not None:
                found.uses_left -= 1
            return found.account

    def issue_token(self, form: dict[str, str]) -> Response:
        """OAuth2 password grant: username = vendor key, password = the account key."""
        settings = self.settings
        if form.get("grant_type") != "password":
            return _json({"error": "unsupported_grant_type"}, 400)
        client_ok = hmac.compare_digest(
            form.get("client_id", "").encode(), settings.client_id.encode()
        ) and hmac.compare_digest(
            form.get("client_secret", "").encode(), settings.client_secret.encode()
        )
        if not client_ok:
            return _json({"error": "invalid_client"}, 401)
        password = form.get("password", "").encode()
        account = next(
            (
                a
                for a in self.accounts
                if hmac.compare_digest(password, settings.account_key(a).encode())
            ),
            None,
        )
        vendor_ok = hmac.compare_digest(
            form.get("username", "").encode(), settings.vendor_key.encode()
        )
        if account is None or not vendor_ok:
            return _json({"error": "invalid_grant"}, 400)
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = _Token(
                account, time.monotonic() + settings.token_ttl_s, settings.token_max_requests
            )
        return _json(
            {"access_token": token, "expires_in": settings.token_ttl_s, "token_type": "Bearer"}
        )

    def _throttled(self) -> Response:
        headers = {}
        if self.settings.throttle_retry_after is not None:
            headers["Retry-After"] = str(self.settings.throttle_retry_after)
        return _json(
            {"message": "Too many requests."}, self.settings.throttle_status, headers=headers
        )

    # -- the practice's configuration -------------------------------------------------------

    def status_ids(self, account: str) -> dict[str, int]:
        with self._lock:
            return {s["Name"]: s["Id"] for s in self.statuses[account]}

    def locations(self, account: str) -> list[dict]:
        own = [wire.location_record(s, o) for s, o in self.accounts[account].slots()]
        with self._lock:
            return own + list(self.extra_locations[account])

    def add_status(self, name: str, account: str | None = None) -> list[dict]:
        added = []
        with self._lock:
            for key in [account] if account else list(self.statuses):
                statuses = self.statuses[key]
                record = {"Id": max(s["Id"] for s in statuses) + 1, "Name": name, "IsActive": True}
                statuses.append(record)
                added.append(record)
            self._version += 1
        return added

    def add_location(self, name: str, timezone: str, account: str | None = None) -> list[dict]:
        added = []
        for key in [account] if account else list(self.accounts):
            ids = [loc["Id"] for loc in self.locations(key)]
            record = {
                "Id": max(ids) + 1,
                "Name": name,
                "AddressLine1": None,
                "City": None,
                "State": None,
                "Zip": None,
                "Phone": None,
                "TimeZone": timezone,
                "IsActive": True,
            }
            with self._lock:
                self.extra_locations[key].append(record)
            added.append(record)
        return added

    # -- feeds ------------------------------------------------------------------------------

    def feed(self, feed: Feed, account: str) -> tuple[pl.DataFrame, pl.DataFrame | None]:
        """The account's rows of ``feed`` sorted by (STAMP, id), rebuilt only when the world
        (a table frame or the clock) or the practice's configuration changed."""
        with self.world.lock:
            state = (self.world.now_utc, self._version)
            frames = tuple(self.world.tables.values())
            hit = self._cache.get((feed.name, account))
            if hit is not None and hit[0] == state and _same(hit[1], frames):
                return hit[2]
            rows, truth = feed.build(self, self.accounts[account])
            built = (rows.sort(STAMP, "id"), truth)
            # Holding the frames keeps them alive, so identity means "unchanged".
            self._cache[(feed.name, account)] = (state, frames, built)
            return built

    def sync_page(self, feed: Feed, request: Request) -> Response:
        query = {k.lower(): v for k, v in request.query_params.multi_items()}
        token = query.get("continuetoken")
        position = decode_token(token) if token else None
        since_text = position.since if position else query.get("modifiedsince")
        rows, _ = self.feed(feed, request.state.account)
        if since_text:
            rows = rows.filter(pl.col(STAMP) >= parse_since(since_text))
        start = 0
        if position is not None:
            done = (pl.col(STAMP) < position.stamp) | (
                (pl.col(STAMP) == position.stamp) & (pl.col("id") <= position.id)
            )
            start = rows.select(done.sum()).item()
        # A "shift" fault re-serves rows already sent, as a server racing with writes might.
        start = max(0, start - getattr(request.state, fault_rules.OFFSET_SHIFT_STATE, 0))
        page = rows.slice(start, self.settings.page_size)
        more = start + page.height < rows.height
        next_token = None
        if more:
            last = page.row(page.height - 1, named=True)
            next_token = encode_token(Position(since_text, last[STAMP], last["id"]))
        return _json({"results": page.drop(STAMP).to_dicts(), "continueToken": next_token})

    def export(self, directory: Path) -> None:
        """World tables plus, per account, every feed as served and the derived truth."""
        self.world.export_truth(directory)
        for feed in FEEDS:
            wire_frames, truth_frames = [], []
            for account in self.accounts:
                rows, truth = self.feed(feed, account)
                wire_frames.append(rows.drop(STAMP).with_columns(account_id=pl.lit(account)))
                if truth is not None:
                    truth_frames.append(truth.with_columns(account_id=pl.lit(account)))
            pl.concat(wire_frames).write_parquet(directory / f"carestack_{feed.name}.parquet")
            if truth_frames:
                pl.concat(truth_frames).write_parquet(
                    directory / f"truth_carestack_{feed.name}.parquet"
                )
        for name, build in (
            ("locations", self.locations),
            ("appointment_statuses", self.status_list),
        ):
            records = [dict(r, account_id=a) for a in self.accounts for r in build(a)]
            pl.DataFrame(records).write_parquet(directory / f"carestack_{name}.parquet")

    def status_list(self, account: str) -> list[dict]:
        with self._lock:
            return [dict(s) for s in self.statuses[account]]


async def _corrupted(response: Response, rule: fault_rules.FaultRule) -> Response:
    """Sync pages wrap records in ``{results: [...]}``: a "corrupt" rule breaks the first
    record of the page (the shared fault would write into the envelope)."""
    body = b"".join([chunk async for chunk in response.body_iterator])  # type: ignore[attr-defined]
    payload = orjson.loads(body)
    records = payload.get("results") if isinstance(payload, dict) else payload
    if response.status_code == 200 and isinstance(records, list) and records:
        records[0][rule.record_field] = rule.value
    return _json(payload, response.status_code)


def _same(old: tuple[pl.DataFrame, ...], new: tuple[pl.DataFrame, ...]) -> bool:
    return len(old) == len(new) and all(a is b for a, b in zip(old, new, strict=True))


# --- routes ------------------------------------------------------------------------------


def _threaded(handler: Callable[[Request], Any]):
    async def endpoint(request: Request) -> Response:
        # Polars work runs off the event loop: a feed rebuild must not stall other requests.
        result = await asyncio.to_thread(handler, request)
        return result if isinstance(result, Response) else _json(result)

    return endpoint


def _api_router(sim: CareStackSimulator) -> APIRouter:
    router = APIRouter(prefix=API_PREFIX)
    lists: dict[str, Callable[[Request], Any]] = {
        "/locations": lambda r: sim.locations(r.state.account),
        "/providers": lambda r: wire.providers(sim.world, sim.accounts[r.state.account]),
        "/operatories": lambda r: wire.operatories(sim.world, sim.accounts[r.state.account]),
        "/appointment-status": lambda r: sim.status_list(r.state.account),
    }
    paths = {
        "patients": "/sync/patients",
        "appointments": "/sync/appointments",
        "appointment_requests": sim.settings.appointment_requests_path,
        "conversation_calls": sim.settings.conversation_calls_path,
    }
    for path, handler in lists.items():
        router.add_api_route(path, _threaded(handler), methods=["GET"])
    for feed in FEEDS:
        handler = _threaded(lambda r, feed=feed: sim.sync_page(feed, r))
        router.add_api_route(paths[feed.name], handler, methods=["GET"])
    return router


def _identity_router(sim: CareStackSimulator) -> APIRouter:
    router = APIRouter()

    @router.post(TOKEN_PATH)
    async def token(request: Request) -> Response:
        # A form body (application/x-www-form-urlencoded), parsed without python-multipart.
        fields = parse_qs((await request.body()).decode("utf-8", "replace"))
        response = sim.issue_token({k: v[0] for k, v in fields.items()})
        sim.stats.record(TOKEN_PATH, response.status_code)
        return response

    return router


class StatusRequest(BaseModel):
    name: str
    account_id: str | None = None  # None = every account


class LocationRequest(BaseModel):
    name: str
    timezone: str = "America/Denver"
    account_id: str | None = None


def _admin_router(sim: CareStackSimulator) -> APIRouter:
    router = admin_router(sim.world, sim.faults, sim.stats, sim.export)

    @router.post("/appointment-statuses")
    async def add_status(body: StatusRequest) -> list[dict]:
        _known_account(sim, body.account_id)
        return sim.add_status(body.name, body.account_id)

    @router.post("/locations")
    async def add_location(body: LocationRequest) -> list[dict]:
        _known_account(sim, body.account_id)
        return sim.add_location(body.name, body.timezone, body.account_id)

    return router


def _known_account(sim: CareStackSimulator, account: str | None) -> None:
    if account is not None and account not in sim.accounts:
        raise ApiError(404, f"No CareStack account {account!r} in this world.")


def create_app(world: World, settings: CareStackSimSettings | None = None) -> FastAPI:
    sim = CareStackSimulator(world, settings or CareStackSimSettings())
    app = FastAPI(title="CareStack API simulator", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.world = world
    app.state.settings = sim.settings
    app.state.faults = sim.faults
    app.state.stats = sim.stats
    app.state.sim = sim
    app.middleware("http")(sim.gate)
    app.include_router(_api_router(sim))
    app.include_router(_identity_router(sim))
    app.include_router(_admin_router(sim))

    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> Response:
        return error.response()

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> Response:
        return _json({"message": str(error.detail)}, error.status_code, error.headers)

    return app
