"""CareStack credentials: which of the two schemes seen in integrations a connection uses.

Both are unconfirmed (vendor-apis.md section 2), so ``auth_mode`` picks one:

- ``headers``: ``VendorKey``, ``AccountKey`` and ``AccountId`` on every request;
- ``oauth_password``: an OAuth2 password grant at ``{identity_url}/connect/token`` (client id and
  secret issued by CareStack, username = vendor key, password = account key) for a Bearer token.
  ``PasswordGrant`` fetches the token, renews it shortly before ``expires_in`` runs out, and on a
  401 (a token revoked or expired early) fetches a new one once and replays the request.

Secrets come only from the environment variables the connection names; no error message or log
line carries one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator

import httpx
import orjson

from chairside.config import CareStackConnection, ConfigError, secret
from extract.http import RETRYABLE_STATUS, ApiError, RetryableError

TOKEN_PATH = "/connect/token"
# Renew this long before the token says it expires (at most half its lifetime).
RENEW_MARGIN_S = 60.0


class PasswordGrant(httpx.Auth):
    """Bearer tokens from an OAuth2 password grant, renewed before expiry and after a 401."""

    def __init__(
        self,
        source: str,
        token_url: str,
        form: dict[str, str],
        *,
        timeout: httpx.Timeout,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._source = source
        self._url = token_url
        self._form = form
        self._http = httpx.Client(timeout=timeout, transport=transport)
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0
        self.issued = 0  # tokens fetched so far

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._current()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = f"Bearer {self._current(stale=token)}"
            yield request

    def close(self) -> None:
        self._http.close()

    def _current(self, stale: str | None = None) -> str:
        with self._lock:
            if self._token is None or self._token == stale or time.monotonic() >= self._renew_at:
                self._token = self._fetch()
            return self._token

    def _fetch(self) -> str:
        try:
            response = self._http.post(self._url, data=self._form)
        except httpx.TimeoutException as error:
            raise RetryableError(f"token request timed out ({type(error).__name__})") from None
        except httpx.TransportError as error:
            raise RetryableError(f"token request failed ({type(error).__name__})") from None
        if response.status_code in RETRYABLE_STATUS:
            raise RetryableError(
                f"token endpoint answered HTTP {response.status_code}", status=response.status_code
            )
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise RetryableError("token endpoint answered a body that is not JSON") from None
        if response.status_code >= 400 or not isinstance(body, dict):
            # The OAuth error code (invalid_grant, invalid_client) names no credential.
            code = body.get("error", "") if isinstance(body, dict) else ""
            raise ApiError(
                self._source,
                TOKEN_PATH,
                f"token request refused: HTTP {response.status_code} {code}".rstrip(),
                response.status_code,
            )
        token, expires_in = body.get("access_token"), body.get("expires_in", 3600)
        if not isinstance(token, str) or not isinstance(expires_in, int | float):
            raise ApiError(self._source, TOKEN_PATH, "token response lacks access_token")
        self._renew_at = time.monotonic() + expires_in - min(RENEW_MARGIN_S, expires_in / 2)
        self.issued += 1
        return token


def credentials(
    connection: CareStackConnection,
    source: str,
    *,
    timeout: httpx.Timeout,
    transport: httpx.BaseTransport | None = None,
) -> tuple[dict[str, str], PasswordGrant | None]:
    """(headers for every request, the token flow or None) for the connection's auth_mode."""
    account_id = secret(connection.account_id_env, purpose=f"{connection.id} account id")
    account_key = secret(connection.account_key_env, purpose=f"{connection.id} account key")
    vendor_key = secret(connection.vendor_key_env, purpose=f"{connection.id} vendor key")
    headers = {"Accept": "application/json"}
    if connection.auth_mode == "headers":
        headers |= {"VendorKey": vendor_key, "AccountKey": account_key, "AccountId": account_id}
        return headers, None
    if not (connection.identity_url and connection.client_id_env and connection.client_secret_env):
        raise ConfigError(
            f"connection {connection.id}: auth_mode oauth_password needs identity_url, "
            "client_id_env and client_secret_env"
        )
    form = {
        "grant_type": "password",
        "client_id": secret(connection.client_id_env, purpose=f"{connection.id} client id"),
        "client_secret": secret(
            connection.client_secret_env, purpose=f"{connection.id} client secret"
        ),
        "username": vendor_key,
        "password": account_key,
    }
    token_url = connection.identity_url.rstrip("/") + TOKEN_PATH
    return headers, PasswordGrant(source, token_url, form, timeout=timeout, transport=transport)
