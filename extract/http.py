"""The one HTTP layer every connector uses: timeouts, a rate limiter, bounded retries.

Retries cover what a vendor API does when it is busy or broken: 429 (honouring Retry-After, in
seconds or as an HTTP date), 5xx, timeouts, dropped connections, and 200 responses whose body is
not complete JSON (truncated or an HTML error page). Anything else (400, 401, 403, 404) is the
caller's mistake and fails at once. Every error names the source and endpoint and never carries
a credential.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import orjson
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

log = logging.getLogger("chairside.extract.http")

RETRYABLE_STATUS = {408, 429, 500, 502, 503, 504}


class ApiError(RuntimeError):
    """A request that failed for good; the message names source and endpoint."""

    def __init__(self, source: str, endpoint: str, detail: str, status: int | None = None):
        super().__init__(f"{source} GET {endpoint}: {detail}")
        self.source = source
        self.endpoint = endpoint
        self.status = status


class RetryableError(Exception):
    def __init__(self, detail: str, retry_after: float | None = None, status: int | None = None):
        super().__init__(detail)
        self.retry_after = retry_after
        self.status = status


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    # A server asking us to wait longer than this is treated as down, not busy.
    max_retry_after_s: float = 300.0


class RateLimiter:
    """Spaces requests evenly at ``per_second``; shared by all threads using one credential."""

    def __init__(self, per_second: float):
        self.interval = 1.0 / per_second
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


class ApiClient:
    def __init__(
        self,
        source: str,
        base_url: str,
        headers: dict[str, str],
        *,
        requests_per_second: float,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 60.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        auth: httpx.Auth | None = None,
    ):
        self.source = source
        self.retry = retry or RetryPolicy()
        self.limiter = RateLimiter(requests_per_second)
        self.requests = 0
        timeout = httpx.Timeout(read_timeout_s, connect=connect_timeout_s, pool=connect_timeout_s)
        # Token auth (NexHealth bearer tokens, QuickBooks OAuth) is an httpx.Auth flow: it adds
        # the token and, on a 401, refreshes once and replays the request.
        self._http = httpx.Client(
            base_url=base_url, headers=headers, timeout=timeout, transport=transport, auth=auth
        )

    @classmethod
    def for_connection(
        cls,
        connection,
        source: str,
        base_url: str,
        headers: dict[str, str],
        *,
        transport: httpx.BaseTransport | None = None,
        auth: httpx.Auth | None = None,
    ) -> ApiClient:
        """A client with the rate limit, timeouts and retry budget a connection's config sets."""
        return cls(
            source,
            base_url,
            headers,
            requests_per_second=connection.requests_per_second,
            connect_timeout_s=connection.connect_timeout_s,
            read_timeout_s=connection.read_timeout_s,
            retry=RetryPolicy(max_attempts=connection.max_attempts),
            transport=transport,
            auth=auth,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        retrying = Retrying(
            stop=stop_after_attempt(self.retry.max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type(RetryableError),
            reraise=True,
            before_sleep=lambda state: self._log_retry(path, state),
        )
        try:
            return retrying(self._get_once, path, params)
        except RetryableError as error:
            raise ApiError(
                self.source,
                path,
                f"gave up after {self.retry.max_attempts} attempts; last error: {error}",
                error.status,
            ) from None

    def _get_once(self, path: str, params: dict[str, Any] | None) -> Any:
        self.limiter.wait()
        self.requests += 1
        try:
            response = self._http.get(path, params=params)
        except httpx.TimeoutException as error:
            raise RetryableError(f"timed out ({type(error).__name__})") from None
        except httpx.TransportError as error:
            raise RetryableError(f"connection failed ({type(error).__name__})") from None
        if response.status_code in RETRYABLE_STATUS:
            raise RetryableError(
                f"HTTP {response.status_code}",
                retry_after=_retry_after(response.headers.get("Retry-After")),
                status=response.status_code,
            )
        if response.status_code >= 400:
            raise ApiError(
                self.source,
                path,
                f"HTTP {response.status_code}: {_explanation(response)}",
                response.status_code,
            )
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            kind = response.headers.get("content-type", "unknown content type")
            raise RetryableError(
                f"HTTP {response.status_code} with a body that is not complete JSON ({kind})"
            ) from None

    def write_json(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Send one write and return the response, whatever its status.

        Unlike ``get_json`` a write is never retried here on a timeout or a 5xx: the vendor may
        have committed it, and only the writer can tell (by looking the record up, with its
        idempotency key). A 429 is retried: the vendor refused it without executing it. A
        timeout or lost connection raises ``httpx.TransportError``/``TimeoutException``.
        """
        for attempt in range(1, self.retry.max_attempts + 1):
            self.limiter.wait()
            self.requests += 1
            response = self._http.request(
                method, path, json=json, params=params, content=content, headers=headers
            )
            if response.status_code != 429 or attempt == self.retry.max_attempts:
                return response
            asked = _retry_after(response.headers.get("Retry-After"))
            delay = min(
                asked if asked is not None else self.retry.initial_backoff_s * 2**attempt,
                self.retry.max_retry_after_s,
            )
            log.warning(
                "%s %s %s: throttled (429); retrying in %.1fs", self.source, method, path, delay
            )
            time.sleep(delay)
        raise AssertionError("unreachable")

    def _wait(self, state: RetryCallState) -> float:
        backoff = wait_exponential_jitter(
            multiplier=self.retry.initial_backoff_s, max=self.retry.max_backoff_s
        )(state)
        error = state.outcome.exception() if state.outcome else None
        asked = getattr(error, "retry_after", None)
        if asked is None:
            return backoff
        if asked > self.retry.max_retry_after_s:
            return self.retry.max_retry_after_s
        return max(asked, 0.0)

    def _log_retry(self, path: str, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            "%s GET %s: attempt %d failed (%s); retrying in %.1fs",
            self.source,
            path,
            state.attempt_number,
            error,
            state.upcoming_sleep,
        )


def _retry_after(value: str | None) -> float | None:
    """Retry-After is delay-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _explanation(response: httpx.Response) -> str:
    # Error bodies are short explanation texts ("PatNum is required"); cap them regardless.
    return response.text.strip()[:300] or response.reason_phrase
