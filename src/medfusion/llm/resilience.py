"""Keeping a flaky endpoint from hurting the wards: bounded retries with jittered exponential backoff, a
circuit breaker that stops calling an endpoint that keeps failing, and a cap on requests in flight.

The breaker follows the usual three states (closed → open after N consecutive failures → half-open after a
cool-down, where one trial call decides). While it is open, callers get ``circuit_open`` at once and take
their specialist path instead of waiting for timeouts.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    closed = "closed"
    open = "open"
    half_open = "half_open"


class CircuitBreaker:
    def __init__(
        self, failures: int, reset_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = failures
        self.reset_seconds = reset_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._state()

    def _state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.closed
        if self.clock() - self._opened_at >= self.reset_seconds:
            return BreakerState.half_open
        return BreakerState.open

    def allow(self) -> bool:
        """May a call go out now? In half-open state only one trial call at a time."""
        with self._lock:
            state = self._state()
            if state is BreakerState.closed:
                return True
            if state is BreakerState.half_open and not self._trial_running:
                self._trial_running = True
                return True
            return False

    def success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_running = False

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._trial_running or self._failures >= self.threshold:
                self._opened_at = self.clock()
            self._trial_running = False


def backoff_seconds(
    attempt: int, retry_after: float | None = None, base: float = 0.5, cap: float = 8.0
) -> float:
    """Full-jitter exponential backoff; a server's ``Retry-After`` is honoured up to the cap."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), cap)
    return random.uniform(0, min(cap, base * 2**attempt))


class Limiter:
    """At most ``n`` requests in flight; a caller that cannot get a slot before its deadline gives up."""

    def __init__(self, n: int) -> None:
        self._slots = threading.BoundedSemaphore(n)

    def acquire(self, timeout: float) -> bool:
        return self._slots.acquire(timeout=max(timeout, 0.0))

    def release(self) -> None:
        self._slots.release()
