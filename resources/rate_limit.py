"""A request budget per video platform: a thread-safe token bucket.

Platforms throttle (YouTube answers bursts with 429s and bot checks), so every request the clip machinery
makes (metadata, preview decode, clip download) first takes a token. Waiting is reservation-based: a caller
that finds the bucket empty books its token and sleeps until it is due, so concurrent workers queue in
arrival order instead of polling. Clock and sleep are injectable so the arithmetic is testable without time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr


class TokenBucket:
    """`rate_per_s` tokens a second, at most `burst` banked; `acquire` blocks until a token is due."""

    def __init__(
        self,
        rate_per_s: float,
        burst: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not rate_per_s > 0:
            raise ValueError(f"TokenBucket rate_per_s must be > 0, got {rate_per_s}")
        if not burst >= 1:
            raise ValueError(f"TokenBucket burst must be >= 1, got {burst}")
        self.rate_per_s = float(rate_per_s)
        self.burst = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = self.burst
        self._updated = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate_per_s)
        self._updated = now

    def available(self) -> float:
        """Tokens banked now (negative while callers are waiting on booked tokens)."""
        with self._lock:
            self._refill()
            return self._tokens

    def try_acquire(self, tokens: float = 1.0) -> bool:
        """Take `tokens` if they are banked now; never waits."""
        self._check(tokens)
        with self._lock:
            self._refill()
            if self._tokens < tokens:
                return False
            self._tokens -= tokens
            return True

    def acquire(self, tokens: float = 1.0) -> float:
        """Book `tokens` and sleep until they are due; returns the seconds waited."""
        self._check(tokens)
        with self._lock:
            self._refill()
            self._tokens -= tokens
            wait = max(0.0, -self._tokens / self.rate_per_s)
        if wait > 0:
            self._sleep(wait)
        return wait

    def _check(self, tokens: float) -> None:
        if not 0 < tokens <= self.burst:
            raise ValueError(f"can take between 0 and burst={self.burst:g} tokens at once, asked for {tokens}")


class RateLimit(ConfigurableResource):
    """The request budget of one platform; configure one per platform (YouTube wants a slow one).

    One bucket is shared by everything that uses this resource instance in a process, so all workers
    of a run draw from the same budget.
    """

    rate_per_s: float = Field(default=0.5, gt=0, description="Sustained platform requests per second.")
    burst: int = Field(default=4, ge=1, description="Requests allowed back to back after a quiet spell.")

    _bucket: TokenBucket | None = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def bucket(self) -> TokenBucket:
        with self._lock:
            if self._bucket is None:
                self._bucket = TokenBucket(self.rate_per_s, self.burst)
            return self._bucket
