"""QuickBooks Online simulator: the group's company (``simulators.quickbooks.data``).

- ``POST /oauth2/v1/tokens/bearer``: the refresh-token grant with HTTP Basic client auth. Every
  refresh ROTATES the refresh token (the old one answers ``400 invalid_grant`` afterwards);
  access tokens expire after ``access_token_ttl_s`` (or ``access_token_max_uses`` requests).
- ``GET /v3/company/{realm}/query?query=...`` (also POST with the select as an
  ``application/text`` body): QBO's query language, one entity, ``WHERE`` with AND, ``ORDERBY``,
  1-based ``STARTPOSITION``, ``MAXRESULTS`` (default 100, max 1000), ``count(*)``; answered as
  ``{"QueryResponse": {"<Entity>": [...], "startPosition", "maxResults"}, "time"}``.
- ``GET /v3/company/{realm}/cdc?entities=A,B&changedSince=...``: 30-day look-back, at most
  1000 objects per response.
- ``POST /v3/company/{realm}/deposit``: create a Deposit, or update one (the body has ``Id``
  and ``SyncToken``; a stale SyncToken gives 5010; ``"sparse": true`` keeps omitted fields).
  ``GET /v3/company/{realm}/deposit/{id}`` reads one. Validation and the written store:
  ``simulators.quickbooks.writes``. Written deposits show in ``/query`` and ``/cdc`` like the
  derived ones and move the accounts' ``CurrentBalance``.
- ``POST /v3/company/{realm}/batch``: ``BatchItemRequest`` items (create/update a Deposit, or a
  Query), answered item by item (not transactional). At most ``max_batch_items`` items; a batch
  is ONE request toward the per-minute limit and also counts toward ``batch_requests_per_minute``.
- ``?requestid=`` on a write: a repeated id gets the original response back without executing
  again (``requestid_replay``; sources disagree whether QBO really does).
- Errors are Fault bodies; an expired token gives 401 Fault 3200; throttling (500 requests a
  minute and 10 concurrent per realm) gives 429 with code 3001 in an XML body, as reported
  even for JSON requests. ``minorversion`` is accepted and otherwise ignored.

Scripted faults match the path after ``/v3/company/{realm}`` (``/query``, ``/cdc``,
``/deposit``, ``/batch``) or the token path itself, and a rule's ``method`` limits it to, e.g.,
writes. Admin endpoints under ``/_sim`` are shared with the Stripe simulator; this one adds
``/_sim/ledger`` (account balances from every deposit) and ``/_sim/written``.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import re
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import orjson
from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from simulators import faults as fault_rules
from simulators.admin import admin_router, frames_exporter
from simulators.gate import RequestStats, Throttle
from simulators.quickbooks.data import QuickBooksData, QuickBooksDataSettings, derive
from simulators.quickbooks.writes import (
    BATCH_REQUESTID_MAX,
    BID_MAX,
    REQUESTID_MAX,
    Chart,
    StoredResponse,
    WriteFault,
    WriteRules,
    WriteStore,
    business,
    debits,
    ledger,
)
from simulators.stripe.app import DerivedCache, corrupt_first_record
from simulators.world import World

TOKEN_PATH = "/oauth2/v1/tokens/bearer"
_COMPANY = re.compile(r"^/v3/company/(?P<realm>[^/]+)(?P<rest>/.*)$")
ENTITIES = ("Account", "Class", "Department", "Deposit", "JournalEntry")
NAME_LISTS = frozenset({"Account", "Class", "Department"})
_META = ("Id", "MetaData.CreateTime", "MetaData.LastUpdatedTime")
# Filterable properties. Deposit's beyond Id/TxnDate/TotalAmt/MetaData are unconfirmed (4001).
QUERYABLE = {
    "Account": {
        *_META,
        "Name",
        "Active",
        "AccountType",
        "AccountSubType",
        "Classification",
        "FullyQualifiedName",
        "CurrentBalance",
    },
    "Class": {*_META, "Name", "Active", "FullyQualifiedName"},
    "Department": {*_META, "Name", "Active", "FullyQualifiedName"},
    "Deposit": {*_META, "TxnDate", "TotalAmt"},
    "JournalEntry": {*_META, "TxnDate", "DocNumber", "TotalAmt"},
}


@dataclass
class QuickBooksSimSettings:
    realm_id: str = "9341453050000001"
    client_id: str = "sim-client-id"
    client_secret: str = "sim-client-secret"
    initial_refresh_token: str = "sim-refresh-token-0"
    access_token_ttl_s: float = 3600.0
    # Test knob: an access token also expires after this many API requests (None = never).
    access_token_max_uses: int | None = None
    # Rotation cadence is unconfirmed (users report about once a day); here every refresh.
    rotate_refresh_tokens: bool = True
    refresh_token_ttl_s: int = 8_726_400  # reported in x_refresh_token_expires_in only
    requests_per_minute: float | None = 500.0  # per realm
    throttle_burst: float = 10.0
    max_concurrent: int = 10  # per realm
    throttle_retry_after: int | None = None  # unconfirmed whether QBO sends Retry-After
    throttle_body: Literal["xml", "json"] = "xml"
    auth_fault_casing: Literal["pascal", "lower"] = "pascal"  # a probe saw lowercase [U]
    # Name-list queries return only active entities unless the WHERE mentions Active.
    name_lists_active_only: bool = True
    max_results: int = 1000
    cdc_max_objects: int = 1000
    cdc_lookback_days: int = 30
    # -- writes (the unconfirmed parts of reference section 18 are knobs) --
    # A repeated ?requestid= gets the original response back (section 3: sources disagree).
    requestid_replay: bool = True
    max_batch_items: int = 30  # disputed: 10, 30 or 50
    batch_requests_per_minute: float | None = 40.0  # per realm, on top of the 500/min
    batch_throttle_burst: float = 2.0
    allow_negative_deposit_lines: bool = True  # a negative API Amount is unconfirmed
    book_close_date: date | None = None  # writes dated on or before it: 6210
    duplicate_doc_number_fault: bool = False  # a DocNumber already used: 6140
    data: QuickBooksDataSettings = field(default_factory=QuickBooksDataSettings)


class QboFault(Exception):
    """An error answered with QBO's Fault body."""

    def __init__(
        self, status: int, code: str, message: str, detail: str = "", kind="ValidationFault"
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail
        self.kind = kind

    def body(self, now: str, lower: bool = False) -> dict:
        error = {"Message": self.message, "Detail": self.detail, "code": self.code}
        if lower:
            return {
                "fault": {"error": [{k.lower(): v for k, v in error.items()}], "type": self.kind},
                "time": now,
            }
        return {"Fault": {"Error": [error], "type": self.kind}, "time": now}


def _parse_error(detail: str) -> QboFault:
    return QboFault(400, "4000", "Error parsing query", f"QueryParserError: {detail}")


# --- the query language --------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:\\.|[^'\\])*')|(?P<num>-?\d+(?:\.\d+)?)(?![\w.])|(?P<op><=|>=|!=|=|<|>)"
    r"|(?P<punct>[(),*])|(?P<word>[A-Za-z_][\w.]*))"
)


@dataclass
class Condition:
    field: str
    op: str  # = < > <= >= like in
    values: list[Any]


@dataclass
class Query:
    entity: str
    count: bool = False
    where: list[Condition] = field(default_factory=list)
    order: list[tuple[str, bool]] = field(default_factory=list)  # (field, descending)
    start: int = 1
    max_results: int = 100


def tokenize(text: str) -> list[tuple[str, Any]]:
    tokens, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise _parse_error(f"Encountered an unexpected character at position {pos}.")
        kind = match.lastgroup
        raw = match.group(kind)
        if kind == "str":
            value: Any = re.sub(r"\\(.)", r"\1", raw[1:-1])
        elif kind == "num":
            value = float(raw) if "." in raw else int(raw)
        else:
            value = raw
        tokens.append((kind, value))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    def peek_word(self) -> str | None:
        if self.i < len(self.tokens) and self.tokens[self.i][0] == "word":
            return self.tokens[self.i][1].lower()
        return None

    def take(self, kind: str | None = None, value: str | None = None) -> Any:
        if self.i >= len(self.tokens):
            raise _parse_error("Encountered end of query.")
        got_kind, got = self.tokens[self.i]
        if (kind and got_kind != kind) or (
            value and not (isinstance(got, str) and got.lower() == value)
        ):
            raise _parse_error(f'Encountered "{str(got)[:30]}" at token {self.i + 1}.')
        self.i += 1
        return got

    def parse(self) -> Query:
        self.take("word", "select")
        count = False
        if self.peek_word() == "count":
            self.take()
            self.take("punct", "(")
            self.take("punct", "*")
            self.take("punct", ")")
            count = True
        else:
            self.take("punct", "*")
        self.take("word", "from")
        name = self.take("word")
        entity = next((e for e in ENTITIES if e.lower() == name.lower()), None)
        if entity is None:
            raise _parse_error(f"Invalid context declaration : {name[:40]}")
        query = Query(entity, count)
        if self.peek_word() == "where":
            self.take()
            query.where.append(self.condition(entity))
            while self.peek_word() == "and":
                self.take()
                query.where.append(self.condition(entity))
        if self.peek_word() in ("orderby", "order"):
            if self.take().lower() == "order":
                self.take("word", "by")
            query.order = self.ordering(entity)
        for word in ("startposition", "maxresults"):
            if self.peek_word() == word:
                self.take()
                value = self.take("num")
                if not isinstance(value, int) or value < 1:
                    raise _parse_error(f"{word.upper()} must be a positive integer.")
                if word == "startposition":
                    query.start = value
                else:
                    query.max_results = value
        if self.i != len(self.tokens):
            raise _parse_error(f'Encountered "{str(self.tokens[self.i][1])[:30]}".')
        return query

    def condition(self, entity: str) -> Condition:
        name = _queryable(entity, self.take("word"))
        if self.peek_word() in ("in", "like"):
            op = self.take().lower()
        else:
            op = self.take("op")
            if op == "!=":
                raise _parse_error("Operator != is not supported.")
        if op != "in":
            return Condition(name, op, [self.literal()])
        self.take("punct", "(")
        values = [self.literal()]
        while self.i < len(self.tokens) and self.tokens[self.i] == ("punct", ","):
            self.take()
            values.append(self.literal())
        self.take("punct", ")")
        return Condition(name, "in", values)

    def literal(self) -> Any:
        kind, value = self.tokens[self.i] if self.i < len(self.tokens) else (None, None)
        if kind in ("str", "num"):
            self.i += 1
            return value
        if kind == "word" and value.lower() in ("true", "false"):
            self.i += 1
            return value.lower() == "true"
        raise _parse_error(f"Expected a value at token {self.i + 1}.")

    def ordering(self, entity: str) -> list[tuple[str, bool]]:
        order = []
        while True:
            name = _queryable(entity, self.take("word"))
            descending = False
            if self.peek_word() in ("asc", "desc"):
                descending = self.take().lower() == "desc"
            order.append((name, descending))
            if not (self.i < len(self.tokens) and self.tokens[self.i] == ("punct", ",")):
                return order
            self.take()


def _queryable(entity: str, name: str) -> str:
    for known in QUERYABLE[entity]:
        if known.lower() == name.lower():
            return known
    raise QboFault(
        400,
        "4001",
        "Invalid query",
        f"QueryValidationError: property '{name[:40]}' is not queryable for {entity}",
    )


def parse_query(text: str) -> Query:
    return _Parser(text).parse()


# --- evaluation ----------------------------------------------------------------------------


def _field(obj: dict, path: str) -> Any:
    for part in path.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def _typed(name: str, value: Any, zone: ZoneInfo) -> Any:
    """A comparable value for a property: instants, dates, numbers (Id is numeric text)."""
    if value is None:
        return None
    if name.startswith("MetaData."):
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            raise _parse_error(f"Invalid datetime '{str(value)[:40]}'.") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=zone)
    if name == "TxnDate":
        try:
            return date.fromisoformat(str(value)[:10])
        except ValueError:
            raise _parse_error(f"Invalid date '{str(value)[:40]}'.") from None
    if name in ("TotalAmt", "CurrentBalance"):
        return float(value)
    if name == "Id":
        return int(value) if str(value).isdigit() else str(value)
    return value


def _matches(obj: dict, cond: Condition, zone: ZoneInfo) -> bool:
    have = _typed(cond.field, _field(obj, cond.field), zone)
    wants = [_typed(cond.field, v, zone) for v in cond.values]
    if have is None:
        return False
    try:
        if cond.op == "in":
            return have in wants
        if cond.op == "like":
            pattern = "^" + ".*".join(re.escape(p) for p in str(cond.values[0]).split("%")) + "$"
            return re.match(pattern, str(have), re.IGNORECASE) is not None
        want = wants[0]
        return {
            "=": have == want,
            "<": have < want,
            ">": have > want,
            "<=": have <= want,
            ">=": have >= want,
        }[cond.op]
    except TypeError:
        raise _parse_error(f"Cannot compare {cond.field} with the given value.") from None


# --- tokens --------------------------------------------------------------------------------


class TokenAuthority:
    """Issues and checks tokens; the refresh token rotates on use."""

    def __init__(self, settings: QuickBooksSimSettings) -> None:
        self.settings = settings
        self._refresh = {settings.initial_refresh_token}
        self._access: dict[str, list[float]] = {}  # token -> [expires_at, uses left]
        self._lock = threading.Lock()
        self.refreshes = 0

    def refresh(self, token: str) -> dict:
        with self._lock:
            if token not in self._refresh:
                raise PermissionError("invalid_grant")
            self.refreshes += 1
            new_refresh = token
            if self.settings.rotate_refresh_tokens:
                self._refresh.discard(token)
                new_refresh = f"RT1-{secrets.token_urlsafe(24)}"
                self._refresh.add(new_refresh)
            access = f"eyJsim.{secrets.token_urlsafe(32)}"
            uses = self.settings.access_token_max_uses
            self._access[access] = [
                time.monotonic() + self.settings.access_token_ttl_s,
                float("inf") if uses is None else uses,
            ]
        return {
            "access_token": access,
            "refresh_token": new_refresh,
            "token_type": "bearer",
            "expires_in": int(self.settings.access_token_ttl_s),
            "x_refresh_token_expires_in": self.settings.refresh_token_ttl_s,
        }

    def use(self, token: str) -> bool:
        with self._lock:
            entry = self._access.get(token)
            if entry is None or entry[0] <= time.monotonic() or entry[1] <= 0:
                return False
            entry[1] -= 1
            return True

    def expire_access_tokens(self) -> None:
        with self._lock:
            self._access.clear()


# --- the simulator -------------------------------------------------------------------------


class QuickBooksSimulator:
    def __init__(self, world: World, settings: QuickBooksSimSettings) -> None:
        self.world = world
        self.settings = settings
        self.zone = ZoneInfo(settings.data.company_timezone)
        self.cache = DerivedCache(world, lambda w: Company(derive(w, settings.data)))
        self.faults = fault_rules.FaultSet()
        self.stats = RequestStats()
        self.tokens = TokenAuthority(settings)
        rate = settings.requests_per_minute
        self.throttle = Throttle(None if rate is None else rate / 60, settings.throttle_burst)
        batches = settings.batch_requests_per_minute
        self.batch_throttle = Throttle(
            None if batches is None else batches / 60, settings.batch_throttle_burst
        )
        self._in_flight: dict[str, int] = defaultdict(int)
        self.writes = WriteStore()

    def company(self) -> Company:
        return self.cache.get()

    def objects(self, entity: str) -> list[dict]:
        """What the API serves: the derived books plus what was written over the API."""
        derived = self.company().objects(entity)
        written = self.writes.all_deposits()
        if entity == "Deposit":
            return derived + written
        if entity == "Account" and written:
            change = debits(written)
            return [
                _with_balance(a, change.get(a["Id"])) if a.get("Classification") == "Asset" else a
                for a in derived
            ]
        return derived

    def chart(self) -> Chart:
        return Chart.of(self.company().objects)

    def today(self) -> date:
        with self.world.lock:
            now = self.world.now_utc
        return now.astimezone(self.zone).date()

    def rules(self) -> WriteRules:
        s = self.settings
        return WriteRules(
            allow_negative_lines=s.allow_negative_deposit_lines,
            book_close_date=s.book_close_date,
            duplicate_doc_number_fault=s.duplicate_doc_number_fault,
        )

    def now_text(self) -> str:
        with self.world.lock:
            now = self.world.now_utc
        return now.astimezone(self.zone).isoformat(timespec="milliseconds")

    def fault_response(self, fault: QboFault) -> Response:
        lower = fault.status == 401 and self.settings.auth_fault_casing == "lower"
        return JSONResponse(fault.body(self.now_text(), lower), status_code=fault.status)

    async def gate(self, request: Request, call_next: fault_rules.CallNext) -> Response:
        path = request.url.path
        if path == TOKEN_PATH:
            response = await self._faulted(path, request, call_next)
            self.stats.record(path, response.status_code)
            return response
        match = _COMPANY.match(path)
        if not match:
            return await call_next(request)
        rest = match["rest"]
        response = await self._guarded(request, match["realm"], rest, call_next)
        self.stats.record(rest, response.status_code)
        return response

    async def _guarded(
        self, request: Request, realm: str, rest: str, call_next: fault_rules.CallNext
    ) -> Response:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not self.tokens.use(token.strip()):
            return self.fault_response(
                QboFault(
                    401,
                    "3200",
                    "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                    "Token expired or invalid",
                    kind="AUTHENTICATION",
                )
            )
        if realm != self.settings.realm_id:
            return self.fault_response(
                QboFault(
                    403,
                    "3100",
                    "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
                    "The token is not authorized for this company",
                    kind="AUTHORIZATION",
                )
            )
        if self._in_flight[realm] >= self.settings.max_concurrent or not self.throttle.allow(realm):
            return self._throttled()
        if rest == "/batch" and request.method == "POST" and not self.batch_throttle.allow(realm):
            return self._throttled()
        self._in_flight[realm] += 1
        try:
            return await self._faulted(rest, request, call_next)
        finally:
            self._in_flight[realm] -= 1

    async def _faulted(self, path: str, request: Request, call_next) -> Response:
        rule = self.faults.take(path, method=request.method)
        if rule is None:
            return await call_next(request)
        if rule.kind == "corrupt":
            return await corrupt_first_record(await call_next(request), rule, "QueryResponse.*")
        return await fault_rules.apply(rule, request, call_next)

    def _throttled(self) -> Response:
        retry = self.settings.throttle_retry_after
        headers = {"Retry-After": str(retry)} if retry is not None else {}
        message = "message=ThrottleExceeded; errorCode=003001; statusCode=429"
        detail = "The request limit was reached.  Try again later"
        if self.settings.throttle_body == "json":
            fault = QboFault(429, "3001", message, detail, kind="SERVICE")
            return JSONResponse(fault.body(self.now_text()), status_code=429, headers=headers)
        xml = (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f'<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="{self.now_text()}">'
            f'<Fault type="SERVICE"><Error code="3001"><Message>{message}</Message>'
            f"<Detail>{detail}</Detail></Error></Fault></IntuitResponse>"
        )
        return Response(xml, status_code=429, media_type="application/xml", headers=headers)

    # -- endpoints --------------------------------------------------------------------------

    def token(self, form: dict[str, str], authorization: str | None) -> Response:
        if not self._client_ok(authorization):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if form.get("grant_type") != "refresh_token":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        try:
            body = self.tokens.refresh(form.get("refresh_token", ""))
        except PermissionError:
            return JSONResponse(
                {
                    "error": "invalid_grant",
                    "error_description": "Incorrect or invalid refresh token",
                },
                status_code=400,
            )
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    def _client_ok(self, authorization: str | None) -> bool:
        scheme, _, encoded = (authorization or "").strip().partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        expected = f"{self.settings.client_id}:{self.settings.client_secret}"
        return hmac.compare_digest(f"{user}:{password}".encode(), expected.encode())

    def query(self, text: str | None, shift: int) -> Response:
        return self._json(self.query_result(text, shift))

    def query_result(self, text: str | None, shift: int = 0) -> dict:
        if not text:
            raise _parse_error("The query parameter is required.")
        query = parse_query(text)
        if query.max_results > self.settings.max_results:
            raise QboFault(
                400,
                "4001",
                "Invalid query",
                f"QueryValidationError: value {query.max_results} "
                f"is too large. Max allowed value is {self.settings.max_results}",
            )
        rows = self.objects(query.entity)
        where = list(query.where)
        mentions_active = any(c.field == "Active" for c in where)
        if (
            query.entity in NAME_LISTS
            and self.settings.name_lists_active_only
            and not mentions_active
        ):
            where.append(Condition("Active", "=", [True]))
        rows = [r for r in rows if all(_matches(r, c, self.zone) for c in where)]
        if query.count:
            return {"QueryResponse": {"totalCount": len(rows)}}
        for name, descending in reversed(query.order or [("Id", False)]):
            rows.sort(
                key=lambda r, n=name: _sort_key(_typed(n, _field(r, n), self.zone)),
                reverse=descending,
            )
        start = max(1, query.start - shift)
        page = rows[start - 1 : start - 1 + query.max_results]
        body: dict[str, Any] = {}
        if page:
            body = {query.entity: page, "startPosition": start, "maxResults": len(page)}
        return {"QueryResponse": body}

    def cdc(self, entities: str | None, changed_since: str | None) -> Response:
        names = [e.strip() for e in (entities or "").split(",") if e.strip()]
        if not names or not changed_since:
            raise QboFault(400, "4000", "Invalid request", "entities and changedSince are required")
        canonical = []
        for name in names:
            entity = next((e for e in ENTITIES if e.lower() == name.lower()), None)
            if entity is None:
                raise QboFault(400, "4000", "Invalid request", f"Unsupported entity {name[:40]}")
            canonical.append(entity)
        since = _typed("MetaData.LastUpdatedTime", changed_since, self.zone)
        with self.world.lock:
            now = self.world.now_utc
        if since < now - timedelta(days=self.settings.cdc_lookback_days):
            raise QboFault(
                400,
                "4000",
                "Invalid request",
                f"changedSince cannot be more than {self.settings.cdc_lookback_days} days ago",
            )
        budget, parts = self.settings.cdc_max_objects, []
        for entity in canonical:
            changed = [
                o
                for o in self.objects(entity)
                if _typed(
                    "MetaData.LastUpdatedTime", _field(o, "MetaData.LastUpdatedTime"), self.zone
                )
                >= since
            ][:budget]
            budget -= len(changed)
            part: dict[str, Any] = {"startPosition": 1, "maxResults": len(changed)}
            parts.append({entity: changed, **part} if changed else part)
        return self._json({"CDCResponse": [{"QueryResponse": parts}]})

    def _json(self, payload: dict) -> Response:
        payload["time"] = self.now_text()
        return Response(orjson.dumps(payload), media_type="application/json")

    # -- writes -----------------------------------------------------------------------------

    def write(
        self, realm: str, requestid: str | None, limit: int, execute: Callable[[], dict]
    ) -> Response:
        """Run one write, or replay the answer a repeated requestid got the first time."""
        if requestid is not None and len(requestid) > limit:
            fault = business(
                f"You cannot enter more than {limit} characters in the request_id field. You "
                f"tried entering {len(requestid)} characters."
            )
            return self._answer(StoredResponse(400, self._fault_bytes(fault), "application/json"))
        with self.writes.lock:  # one write at a time: a replay never races its original
            stored = self.writes.replayed(realm, requestid, self.settings.requestid_replay)
            if stored is None:
                try:
                    payload = execute()
                    payload["time"] = self.now_text()
                    stored = StoredResponse(200, orjson.dumps(payload), "application/json")
                except WriteFault as fault:
                    stored = StoredResponse(400, self._fault_bytes(fault), "application/json")
                except QboFault as fault:
                    body = orjson.dumps(fault.body(self.now_text()))
                    stored = StoredResponse(fault.status, body, "application/json")
                self.writes.remember(realm, requestid, stored)
        return self._answer(stored)

    @staticmethod
    def _answer(stored: StoredResponse) -> Response:
        return Response(stored.body, status_code=stored.status, media_type=stored.media_type)

    def _fault_bytes(self, fault: WriteFault) -> bytes:
        return orjson.dumps({**_item_fault(fault), "time": self.now_text()})

    def save_deposit(self, body, requestid: str | None, bid: str | None = None) -> dict:
        """Create (no Id) or update (Id + SyncToken) one deposit: ``{"Deposit": {...}}``."""
        if isinstance(body, dict) and body.get("Id") not in (None, ""):
            deposit = self.writes.update(
                body, self.chart(), self.rules(), now=self.now_text(), today=self.today()
            )
        else:
            derived = self.company().objects("Deposit")
            deposit = self.writes.create(
                body,
                self.chart(),
                self.rules(),
                now=self.now_text(),
                today=self.today(),
                requestid=requestid,
                bid=bid,
                existing_doc_numbers=(d["DocNumber"] for d in derived if d.get("DocNumber")),
            )
        return {"Deposit": deposit}

    def batch(self, body, requestid: str | None) -> dict:
        items = body.get("BatchItemRequest") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items:
            raise WriteFault(
                "2010",
                "Request has invalid or unsupported property",
                "BatchItemRequest must be a non-empty list",
                "BatchItemRequest",
            )
        if len(items) > self.settings.max_batch_items:  # the fault code is unconfirmed [U]
            raise business(
                f"A batch request can carry at most {self.settings.max_batch_items} items; this "
                f"one has {len(items)}.",
                "BatchItemRequest",
            )
        self.writes.batches += 1
        self.writes.batch_items += len(items)
        return {"BatchItemResponse": [self._batch_item(item, requestid) for item in items]}

    def _batch_item(self, item, requestid: str | None) -> dict:
        bid = str(item.get("bId", "")) if isinstance(item, dict) else ""
        try:
            if not bid or (requestid and len(bid) > BID_MAX):
                raise business(f"Each bId must be 1 to {BID_MAX} characters.", "bId")
            if "Query" in item:
                return {"bId": bid, **self.query_result(item["Query"])}
            operation = item.get("operation")
            if operation not in ("create", "update") or "Deposit" not in item:
                raise WriteFault(
                    "500",
                    "Unsupported Operation",
                    f"Operation {str(operation)[:20]} is not supported here (Deposit "
                    "create/update and Query only)",
                )
            if operation == "create" and isinstance(item["Deposit"], dict):
                item["Deposit"].pop("Id", None)
            return {"bId": bid, **self.save_deposit(item["Deposit"], requestid, bid)}
        except WriteFault as fault:
            return {"bId": bid, **_item_fault(fault)}
        except QboFault as fault:
            error = WriteFault(fault.code, fault.message, fault.detail)
            return {"bId": bid, **_item_fault(error)}

    def read_deposit(self, deposit_id: str) -> dict:
        for deposit in self.objects("Deposit"):
            if deposit["Id"] == deposit_id:
                return {"Deposit": deposit}
        raise QboFault(
            400, "610", "Object Not Found", f"Object Not Found : Deposit {deposit_id[:20]}"
        )

    def ledger(self, source: str) -> dict:
        derived = self.company().objects("Deposit")
        written = self.writes.all_deposits()
        deposits = {"all": derived + written, "written": written, "derived": derived}[source]
        return {
            "source": source,
            "deposits": len(deposits),
            "accounts": ledger(deposits, self.company().objects("Account")),
        }


def _item_fault(fault: WriteFault) -> dict:
    return {"Fault": {"Error": [fault.error()], "type": "ValidationFault"}}


def _with_balance(account: dict, change) -> dict:
    if not change:
        return account
    balance = round(account["CurrentBalance"] + float(change), 2)
    return account | {"CurrentBalance": balance, "CurrentBalanceWithSubAccounts": balance}


def _json_body(raw: bytes):
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise WriteFault(
            "2010", "Request has invalid or unsupported property", "the body is not valid JSON"
        ) from None


def _sort_key(value: Any) -> tuple:
    # None last; mixed numeric/text Ids compare by type name first.
    return (value is None, type(value).__name__, value if value is not None else 0)


class Company:
    """The derived books rendered as API objects per entity."""

    def __init__(self, data: QuickBooksData) -> None:
        self.data = data
        self._objects = {
            "Account": data.account_objects(),
            "Class": data.location_objects("Class"),
            "Department": data.location_objects("Department"),
            "Deposit": [data.deposit_object(t) for t in data.deposits],
            "JournalEntry": [data.journal_entry_object(t) for t in data.journal_entries],
        }

    def objects(self, entity: str) -> list[dict]:
        return self._objects[entity]


# --- the app -------------------------------------------------------------------------------


def create_app(world: World, settings: QuickBooksSimSettings | None = None) -> FastAPI:
    sim = QuickBooksSimulator(world, settings or QuickBooksSimSettings())
    app = FastAPI(
        title="QuickBooks Online API simulator", openapi_url=None, docs_url=None, redoc_url=None
    )
    app.state.world = world
    app.state.settings = sim.settings
    app.state.faults = sim.faults
    app.state.stats = sim.stats
    app.state.sim = sim
    app.middleware("http")(sim.gate)

    @app.post(TOKEN_PATH)
    async def token(request: Request) -> Response:
        # Parsed by hand: Starlette's form parser needs python-multipart, which we do not ship.
        pairs = parse_qsl((await request.body()).decode(errors="replace"))
        return sim.token(dict(pairs), request.headers.get("authorization"))

    @app.api_route("/v3/company/{realm}/query", methods=["GET", "POST"])
    async def query(request: Request, realm: str) -> Response:
        text = request.query_params.get("query")
        if text is None and request.method == "POST":
            text = (await request.body()).decode(errors="replace")
        shift = getattr(request.state, fault_rules.OFFSET_SHIFT_STATE, 0)
        return await asyncio.to_thread(sim.query, text, shift)

    @app.get("/v3/company/{realm}/cdc")
    async def cdc(request: Request, realm: str) -> Response:
        params = request.query_params
        return await asyncio.to_thread(sim.cdc, params.get("entities"), params.get("changedSince"))

    app.include_router(
        admin_router(
            world, sim.faults, sim.stats, frames_exporter(lambda: sim.company().data.frames())
        )
    )

    @app.post("/v3/company/{realm}/deposit")
    async def save_deposit(request: Request, realm: str) -> Response:
        raw = await request.body()
        requestid = request.query_params.get("requestid")
        if request.query_params.get("operation") not in (None, "update"):
            raise QboFault(400, "500", "Unsupported Operation", "the simulator creates and updates")

        def execute() -> dict:
            return sim.save_deposit(_json_body(raw), requestid)

        return await asyncio.to_thread(sim.write, realm, requestid, REQUESTID_MAX, execute)

    @app.get("/v3/company/{realm}/deposit/{deposit_id}")
    async def read_deposit(realm: str, deposit_id: str) -> Response:
        return sim._json(await asyncio.to_thread(sim.read_deposit, deposit_id))

    @app.post("/v3/company/{realm}/batch")
    async def batch(request: Request, realm: str) -> Response:
        raw = await request.body()
        requestid = request.query_params.get("requestid")

        def execute() -> dict:
            return sim.batch(_json_body(raw), requestid)

        return await asyncio.to_thread(sim.write, realm, requestid, BATCH_REQUESTID_MAX, execute)

    def loopback(request: Request) -> None:
        if request.client is None or request.client.host not in ("127.0.0.1", "::1"):
            raise HTTPException(403, "Simulator admin endpoints answer loopback clients only.")

    @app.get("/_sim/ledger")
    async def sim_ledger(request: Request, source: str = "all") -> dict:
        loopback(request)
        if source not in ("all", "written", "derived"):
            raise HTTPException(400, "source must be all, written or derived")
        return await asyncio.to_thread(sim.ledger, source)

    @app.get("/_sim/written")
    async def sim_written(request: Request) -> dict:
        loopback(request)
        return await asyncio.to_thread(sim.writes.summary)

    @app.post("/_sim/tokens/expire")
    async def expire_tokens(request: Request) -> dict[str, bool]:
        loopback(request)
        sim.tokens.expire_access_tokens()
        return {"expired": True}

    @app.exception_handler(QboFault)
    async def qbo_fault(_: Request, fault: QboFault) -> Response:
        return sim.fault_response(fault)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> Response:
        code = "10000" if error.status_code >= 500 else "4000"
        return sim.fault_response(QboFault(error.status_code, code, str(error.detail)))

    return app
