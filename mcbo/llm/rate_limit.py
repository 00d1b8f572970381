"""Client-side rate limiting: token buckets on requests and tokens per minute.

Each bucket holds at most its per-minute allowance and refills continuously at allowance / 60 per
second; :meth:`RateLimiter.acquire` blocks (sleeps) until both buckets can pay for the request.
The clock and the sleep function are injectable, so tests need no real waiting. Thread-safe.
"""

from __future__ import annotations

import threading
import time
from typing import Callable


class _Bucket:
    def __init__(self, per_minute: float, now: float) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.level = self.capacity
        self.stamp = now

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` (capped at the capacity) is available."""
        need = min(amount, self.capacity) - self.level
        return max(0.0, need / self.rate)


class RateLimiter:
    """At most ``requests_per_minute`` requests and ``tokens_per_minute`` tokens (``None`` = unlimited).

    A request needing more tokens than a whole minute's allowance waits for a full bucket and then
    goes (the bucket goes negative), so it is delayed, never refused.
    """

    def __init__(
        self,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        for name, value in (("requests_per_minute", requests_per_minute), ("tokens_per_minute", tokens_per_minute)):
            if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0):
                raise ValueError(f"rate limit {name} must be a positive number or None, got {value!r}")
        self.clock, self.sleep = clock, sleep
        now = clock()
        self._requests = _Bucket(requests_per_minute, now) if requests_per_minute else None
        self._tokens = _Bucket(tokens_per_minute, now) if tokens_per_minute else None
        self._lock = threading.Lock()
        #: Total seconds spent waiting in :meth:`acquire`.
        self.waited = 0.0

    def acquire(self, tokens: int = 0) -> float:
        """Block until one request of ``tokens`` tokens may go; returns the seconds waited."""
        waited = 0.0
        with self._lock:  # serialises waiters, so requests leave in arrival order
            while True:
                now = self.clock()
                delay = 0.0
                for bucket, amount in ((self._requests, 1.0), (self._tokens, float(tokens))):
                    if bucket is not None:
                        bucket.refill(now)
                        delay = max(delay, bucket.wait_for(amount))
                if delay <= 0.0:
                    break
                self.sleep(delay)
                waited += delay
            if self._requests is not None:
                self._requests.level -= 1.0
            if self._tokens is not None:
                self._tokens.level -= float(tokens)
            self.waited += waited
        return waited


__all__ = ["RateLimiter"]
