"""QuickBooks OAuth 2: access tokens refreshed on demand, rotating refresh tokens persisted.

Intuit may return a NEW refresh token on any refresh, and from then on only the newest one
works (a stale one gives ``400 invalid_grant``). The classic failure is refreshing and not
keeping the new token, or two processes refreshing at once with the same old token. So:

- the newest tokens live in a token store file (``_tokens/quickbooks-<connection>.json`` under
  the landing root), replaced atomically (temp file, fsync, rename) and readable only by the
  owner; the ``refresh_token_env`` variable only seeds the very first refresh;
- a refresh holds an exclusive lock on the store, re-reads it first (another process may have
  refreshed already: then its access token is used), and persists the rotated refresh token
  BEFORE the new access token is used;
- ``QuickBooksAuth`` (an ``httpx.Auth``) adds the access token, refreshes when it has expired
  by the clock, and on a 401 refreshes once and replays the request.

Errors name the connection and the token endpoint, never a token or the client secret.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from chairside.config import QuickBooksConnection, secret

log = logging.getLogger("chairside.extract.quickbooks.auth")

# Refresh a little before the stated expiry, so a token does not die in flight.
EXPIRY_MARGIN_S = 60
_RETRYABLE = {429, 500, 502, 503, 504}


class TokenError(RuntimeError):
    """The token endpoint refused or failed; the message says what to do, without secrets."""


class TokenStore:
    """The newest tokens of one connection, in one JSON file replaced atomically."""

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def for_connection(cls, landing_root: Path | str, connection_id: str) -> TokenStore:
        return cls(Path(landing_root) / "_tokens" / f"quickbooks-{connection_id}.json")

    def load(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return None

    def save(self, tokens: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(tokens, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive across threads and processes; the OS drops it if the process dies."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield


class TokenClient:
    """Refreshes through the token endpoint and keeps the store current."""

    def __init__(
        self,
        connection: QuickBooksConnection,
        store: TokenStore,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.connection = connection
        self.store = store
        self.clock = clock
        self.source = f"quickbooks[{connection.id}]"
        self.endpoint = f"POST {urlsplit(connection.token_url).path}"
        self._transport = transport

    def current(self) -> str:
        """An access token that has not expired by the clock (refreshing if needed)."""
        tokens = self.store.load()
        if tokens and tokens.get("access_token_expires_at", 0) > self.clock() + EXPIRY_MARGIN_S:
            return tokens["access_token"]
        return self.refresh(stale=tokens.get("access_token") if tokens else None)

    def refresh(self, stale: str | None) -> str:
        """A fresh access token; ``stale`` is the one the API just refused (if any)."""
        with self.store.locked():
            tokens = self.store.load()
            if (
                tokens
                and tokens.get("access_token") != stale
                and tokens.get("access_token_expires_at", 0) > self.clock() + EXPIRY_MARGIN_S
            ):
                return tokens["access_token"]  # another process refreshed meanwhile
            refresh_token = (tokens or {}).get("refresh_token") or secret(
                self.connection.refresh_token_env,
                purpose=f"{self.connection.id} first QuickBooks refresh token",
            )
            answer = self._post(refresh_token)
            now = self.clock()
            rotated = answer.get("refresh_token") or refresh_token
            self.store.save(
                {
                    "access_token": answer["access_token"],
                    "access_token_expires_at": now + float(answer.get("expires_in", 3600)),
                    "refresh_token": rotated,
                    "refresh_token_expires_at": now
                    + float(answer.get("x_refresh_token_expires_in", 0)),
                    "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
                }
            )
            log.info(
                "%s: access token refreshed (refresh token %s)",
                self.source,
                "rotated" if rotated != refresh_token else "unchanged",
            )
            return answer["access_token"]

    def _post(self, refresh_token: str) -> dict:
        c = self.connection
        client_id = secret(c.client_id_env, purpose=f"{c.id} QuickBooks client id")
        client_secret = secret(c.client_secret_env, purpose=f"{c.id} QuickBooks client secret")
        timeout = httpx.Timeout(c.read_timeout_s, connect=c.connect_timeout_s)
        last = "no attempt made"
        with httpx.Client(timeout=timeout, transport=self._transport) as http:
            for attempt in range(c.max_attempts):
                if attempt:
                    time.sleep(min(0.5 * 2**attempt, 30.0))
                try:
                    response = http.post(
                        c.token_url,
                        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                        auth=(client_id, client_secret),
                        headers={"Accept": "application/json"},
                    )
                except httpx.TransportError as error:
                    # A refresh may have happened server-side even so; see the final message.
                    last = f"request failed ({type(error).__name__})"
                    continue
                if response.status_code in _RETRYABLE:
                    last = f"HTTP {response.status_code}"
                    continue
                return self._answer(response)
        raise TokenError(
            f"{self.source} {self.endpoint}: gave up after {c.max_attempts} attempts; last "
            f"error: {last}. If the refresh went through but the answer was lost, the stored "
            f"refresh token is now stale: reconnect the app and set {c.refresh_token_env}."
        )

    def _answer(self, response: httpx.Response) -> dict:
        try:
            body = response.json()
        except ValueError:
            body = {}
        error = body.get("error") if isinstance(body, dict) else None
        if response.status_code == 200 and isinstance(body, dict) and "access_token" in body:
            return body
        if error == "invalid_grant":
            raise TokenError(
                f"{self.source} {self.endpoint}: the refresh token was rejected (invalid_grant). "
                f"Reconnect the QuickBooks app, set {self.connection.refresh_token_env} to the new "
                f"refresh token and delete {self.store.path}."
            )
        if error == "invalid_client" or response.status_code == 401:
            raise TokenError(
                f"{self.source} {self.endpoint}: the client id/secret were rejected "
                f"(check {self.connection.client_id_env} and {self.connection.client_secret_env})."
            )
        raise TokenError(
            f"{self.source} {self.endpoint}: HTTP {response.status_code}"
            + (f" ({str(error)[:60]})" if error else "")
        )


class QuickBooksAuth(httpx.Auth):
    """Bearer auth that refreshes once on a 401 and replays the request."""

    def __init__(self, tokens: TokenClient):
        self.tokens = tokens

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.tokens.current()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            log.info("%s: access token refused (401); refreshing", self.tokens.source)
            request.headers["Authorization"] = f"Bearer {self.tokens.refresh(stale=token)}"
            yield request
