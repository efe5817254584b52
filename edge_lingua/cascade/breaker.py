"""A circuit breaker: stop calling a remote that keeps failing, probe it again later."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from edge_lingua.errors import InvalidArgumentError

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half-open"


class CircuitBreaker:
    """Opens after ``failure_threshold`` consecutive failures, for ``reset_after_s`` seconds.

    Once that time has passed one probe call is let through (half-open): success closes
    the circuit, failure opens it again for another ``reset_after_s``. Thread-safe.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_after_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(failure_threshold, int) or failure_threshold < 1:
            raise InvalidArgumentError(
                f"failure_threshold must be a positive integer, got {failure_threshold!r}"
            )
        if reset_after_s <= 0:
            raise InvalidArgumentError(f"reset_after_s must be > 0, got {reset_after_s!r}")
        self.failure_threshold = failure_threshold
        self.reset_after_s = float(reset_after_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> str:
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self._opened_at is None:
            return CLOSED
        if self._clock() - self._opened_at >= self.reset_after_s:
            return HALF_OPEN
        return OPEN

    def allow(self) -> bool:
        """Whether a call may go out now (in half-open state: only one probe at a time)."""
        with self._lock:
            state = self._state()
            if state == CLOSED:
                return True
            if state == HALF_OPEN and not self._probing:
                self._probing = True
                return True
            return False

    def retry_in(self) -> float:
        """Seconds until the breaker lets a probe through (0 when it would now)."""
        with self._lock:
            if self._opened_at is None:
                return 0.0
            return max(0.0, self._opened_at + self.reset_after_s - self._clock())

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._probing = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._probing or self._failures >= self.failure_threshold:
                self._opened_at = self._clock()
            self._probing = False
