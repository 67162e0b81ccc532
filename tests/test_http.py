"""The shared HTTP layer, against the Open Dental simulator over loopback."""

from __future__ import annotations

import time

import pytest

from extract.http import ApiClient, ApiError, RateLimiter, RetryPolicy
from simulators.faults import FaultRule
from tests.conftest import DEVELOPER_KEY


def client_for(opendental, *, attempts: int = 4, read_timeout_s: float = 5.0) -> ApiClient:
    office = opendental.world.spec.offices[0]
    return ApiClient(
        "opendental[test]",
        f"{opendental.url}/api/v1",
        {"Authorization": f"ODFHIR {DEVELOPER_KEY}/{office.customer_key}"},
        requests_per_second=100,
        read_timeout_s=read_timeout_s,
        retry=RetryPolicy(max_attempts=attempts, initial_backoff_s=0.05, max_backoff_s=0.2),
    )


def test_retry_after_is_honoured_before_retrying(opendental):
    opendental.faults.add(FaultRule(path="^/clinics", kind="status", code=429, retry_after=2))
    with client_for(opendental) as client:
        started = time.monotonic()
        rows = client.get_json("/clinics")
        waited = time.monotonic() - started
    assert isinstance(rows, list)
    assert client.requests == 2
    assert waited >= 2.0  # the server asked for two seconds: never less


def test_client_errors_fail_at_once_and_name_the_endpoint(opendental):
    office = opendental.world.spec.offices[0]
    with client_for(opendental) as client, pytest.raises(ApiError) as error:
        client.get_json("/adjustments")  # PatNum is required
    assert client.requests == 1
    assert error.value.status == 400
    assert str(error.value).startswith("opendental[test] GET /adjustments: HTTP 400")

    wrong = ApiClient(
        "opendental[test]",
        f"{opendental.url}/api/v1",
        {"Authorization": f"ODFHIR wrong-key/{office.customer_key}"},
        requests_per_second=100,
    )
    with wrong, pytest.raises(ApiError) as error:
        wrong.get_json("/patients/Simple")
    assert error.value.status == 401
    assert "wrong-key" not in str(error.value)


def test_timeouts_are_retried_then_reported(opendental):
    opendental.faults.add(FaultRule(path="^/clinics", kind="slow", delay=2.0, times=None))
    with client_for(opendental, attempts=2, read_timeout_s=0.3) as client:
        with pytest.raises(ApiError, match=r"gave up after 2 attempts; last error: timed out"):
            client.get_json("/clinics")
        assert client.requests == 2


def test_rate_limiter_spaces_requests_evenly():
    limiter = RateLimiter(per_second=20)
    started = time.monotonic()
    for _ in range(11):
        limiter.wait()
    # Eleven requests at 20/s need at least ten intervals of 50 ms.
    assert time.monotonic() - started >= 0.5
