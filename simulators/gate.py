"""Pieces every vendor simulator's request gate shares: per-credential throttling and request
counts."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any


class _TokenBucket:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Throttle:
    """One token bucket per credential (customer key, API key, realm): vendors throttle per key."""

    def __init__(self, rate: float | None, burst: float) -> None:
        self._rate = rate
        self._burst = max(1.0, burst)
        self._buckets: dict[str, _TokenBucket] = {}

    def allow(self, key: str) -> bool:
        if self._rate is None:
            return True
        bucket = self._buckets.setdefault(key, _TokenBucket(self._rate, self._burst))
        return bucket.take()


class RequestStats:
    """Counts of API requests per (path after the API prefix, status), for tests to assert on."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, int]] = Counter()
        self._lock = threading.Lock()

    def record(self, path: str, status: int) -> None:
        with self._lock:
            self._counts[(path, status)] += 1

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            items = sorted(self._counts.items())
        return [{"path": p, "status": s, "count": n} for (p, s), n in items]
