"""NexHealth bearer tokens as an ``httpx.Auth`` flow.

``POST /authenticates`` with the API key in ``Authorization`` answers 201 with
``{code: true, data: {token}}``; every other call sends ``Authorization: Bearer <token>``. Tokens
expire (1 h in production), so a 401 gets one fresh token and one replay; a second 401 is
returned to the caller, which fails at once. The token is cached for the life of the flow
(one ``ApiClient``, used by one thread).

Errors of the token request itself behave like the data request's: 429/5xx, timeouts and broken
bodies raise ``RetryableError`` (the ``ApiClient`` retries the whole request); other statuses fail
at once, naming the source and the endpoint we were authorizing for, never the key.
"""

from __future__ import annotations

from collections.abc import Generator

import httpx
import orjson

from extract.http import RETRYABLE_STATUS, ApiError, RetryableError

AUTH_PATH = "/authenticates"


class NexHealthAuth(httpx.Auth):
    requires_response_body = True

    def __init__(self, source: str, base_url: str, api_key: str, api_version: str) -> None:
        self.source = source
        self._url = f"{base_url.rstrip('/')}{AUTH_PATH}"
        self._api_key = api_key
        self._api_version = api_version
        self._token: str | None = None
        self.authentications = 0  # how many tokens this flow has obtained

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._token is None:
            yield from self._authenticate(request)
        request.headers["Authorization"] = f"Bearer {self._token}"
        response = yield request
        if response.status_code == 401:
            yield from self._authenticate(request)
            request.headers["Authorization"] = f"Bearer {self._token}"
            yield request

    def _authenticate(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        self._token = None
        response = yield httpx.Request(
            "POST",
            self._url,
            headers={
                "Authorization": self._api_key,
                "Nex-Api-Version": self._api_version,
                "Accept": "application/json",
            },
        )
        status = response.status_code
        if status in RETRYABLE_STATUS:
            raise RetryableError(f"POST {AUTH_PATH} answered HTTP {status}", status=status)
        if status >= 400:
            raise ApiError(
                self.source,
                request.url.path,
                f"authentication failed: POST {AUTH_PATH} answered HTTP {status}",
                status,
            )
        try:
            token = orjson.loads(response.content)["data"]["token"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            token = None
        if not isinstance(token, str) or not token:
            raise RetryableError(f"POST {AUTH_PATH} answered without a token")
        self._token = token
        self.authentications += 1
