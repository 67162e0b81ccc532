"""Scripted faults: the failures a connector must survive, injected into matching API requests.

Shared by every vendor simulator. Paths are matched after the vendor's API prefix. A "shift"
rule only sets ``request.state.offset_shift``; simulators with offset paging honour it.

Rules are tried in order for each request; the first live rule whose ``path`` regex matches takes
the request: it lets the request through untouched while its ``skip`` lasts, then applies its
fault ``times`` times (``None`` = forever) and is spent. Rules are added from Python
(``app.state.faults``) or over ``POST /_sim/faults``.
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, fields
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response

KINDS = frozenset({"status", "slow", "truncate", "non_json", "shift", "corrupt", "lost_response"})
STATUS_CODES = frozenset({429, 500, 502, 503, 504})
# Where a "shift" rule tells the list endpoint how far to move its Offset back.
OFFSET_SHIFT_STATE = "offset_shift"

CallNext = Callable[[Request], Awaitable[Response]]

_HTML_ERROR_PAGE = (
    "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    "<body><h1>Bad Gateway</h1><p>The upstream server did not respond in time.</p></body></html>"
)


@dataclass
class FaultRule:
    path: str  # regex searched in the path after /api/v1, e.g. "^/patients"
    kind: str
    times: int | None = 1
    skip: int = 0
    code: int = 503  # "status"
    retry_after: int | None = None  # "status": seconds, or the offset of the HTTP-date
    retry_after_date: bool = False  # "status": send Retry-After as an HTTP-date
    delay: float = 0.0  # "slow": seconds
    rows: int = 0  # "shift": how many rows the page moves back
    # Only requests for this office (world office key); None = every office.
    office: str | None = None
    record_field: str = ""  # "corrupt": the field of the page's first row to overwrite...
    value: Any = None  # ...with this value (a record that breaks its contract)
    # Only requests with this HTTP method (e.g. "POST" for a write); None = every method.
    method: str | None = None
    _pattern: re.Pattern[str] = field(init=False, repr=False)
    _skipped: int = field(default=0, init=False, repr=False)
    _hits: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem:
            raise ValueError(f"invalid fault rule: {problem}")
        self._pattern = re.compile(self.path)

    def _problem(self) -> str | None:
        checks = [
            (self.kind in KINDS, f"kind must be one of {sorted(KINDS)}"),
            (self.times is None or self.times >= 1, "times must be >= 1 or null"),
            (self.skip >= 0, "skip must be >= 0"),
            (self.kind != "status" or self.code in STATUS_CODES, "code must be 429/5xx"),
            (self.retry_after is None or self.retry_after >= 0, "retry_after must be >= 0"),
            (self.kind != "slow" or self.delay > 0, "slow needs delay > 0"),
            (self.kind != "shift" or self.rows >= 1, "shift needs rows >= 1"),
            (self.kind != "corrupt" or bool(self.record_field), "corrupt needs a record_field"),
        ]
        return next((message for ok, message in checks if not ok), None)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultRule:
        allowed = {f.name for f in fields(cls) if f.init}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"invalid fault rule: unknown keys {sorted(unknown)}")
        return cls(**data)

    @property
    def spent(self) -> bool:
        return self.times is not None and self._hits >= self.times

    def matches(self, path: str, office: str | None = None, method: str | None = None) -> bool:
        if self.office is not None and office != self.office:
            return False
        if self.method is not None and method is not None and method.upper() != self.method.upper():
            return False
        return self._pattern.search(path) is not None


class FaultSet:
    """Thread-safe rule list: tests edit it from their thread while the server reads it."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()

    def add(self, *rules: FaultRule | Mapping[str, Any]) -> None:
        parsed = [r if isinstance(r, FaultRule) else FaultRule.from_dict(r) for r in rules]
        with self._lock:
            self._rules.extend(parsed)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def take(
        self, path: str, office: str | None = None, method: str | None = None
    ) -> FaultRule | None:
        """The fault to apply to this request, if any (counting it against the rule)."""
        with self._lock:
            for rule in self._rules:
                if rule.spent or not rule.matches(path, office, method):
                    continue
                if rule._skipped < rule.skip:
                    rule._skipped += 1
                    return None
                rule._hits += 1
                return rule
        return None


def _retry_after(rule: FaultRule) -> dict[str, str]:
    if rule.retry_after_date:
        # HTTP-dates have whole seconds: round up so the client never waits less than asked.
        when = math.ceil(time.time()) + (1 if rule.retry_after is None else rule.retry_after)
        return {"Retry-After": formatdate(when, usegmt=True)}
    if rule.retry_after is not None:
        return {"Retry-After": str(rule.retry_after)}
    return {}


def _status_response(rule: FaultRule) -> Response:
    text = f"{rule.code} {HTTPStatus(rule.code).phrase} (simulated fault)"
    return PlainTextResponse(text, status_code=rule.code, headers=_retry_after(rule))


async def _truncated(response: Response) -> Response:
    # call_next hands back a streamed response: collect the whole body before cutting it.
    body = b"".join([chunk async for chunk in response.body_iterator])  # type: ignore[attr-defined]
    return Response(body[: len(body) // 2], status_code=200, media_type="application/json")


async def _corrupted(response: Response, rule: FaultRule) -> Response:
    body = b"".join([chunk async for chunk in response.body_iterator])  # type: ignore[attr-defined]
    rows = orjson.loads(body)
    first = rows[0] if isinstance(rows, list) and rows else rows
    if isinstance(first, dict):
        first[rule.record_field] = rule.value
    return Response(
        orjson.dumps(rows), status_code=response.status_code, media_type="application/json"
    )


async def apply(rule: FaultRule, request: Request, call_next: CallNext) -> Response:
    """Answer ``request`` the way ``rule`` says, calling the real endpoint where it needs one."""
    if rule.kind == "status":
        return _status_response(rule)
    if rule.kind == "non_json":
        return HTMLResponse(_HTML_ERROR_PAGE, status_code=200)
    if rule.kind == "slow":
        await asyncio.sleep(rule.delay)
    if rule.kind == "shift":
        setattr(request.state, OFFSET_SHIFT_STATE, rule.rows)
    response = await call_next(request)
    if rule.kind == "lost_response":
        # The endpoint ran (a write is committed) but the caller never learns it: the outcome
        # a writer must settle by looking the record up before sending again.
        return _status_response(FaultRule(path=rule.path, kind="status", code=504))
    if rule.kind == "corrupt" and response.status_code == 200:
        return await _corrupted(response, rule)
    return await _truncated(response) if rule.kind == "truncate" else response
