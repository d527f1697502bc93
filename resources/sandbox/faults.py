"""Reproducible fault injection for the sandbox platform, faults that pass with time.

A real video platform rate-limits, has outages, stalls, drops connections mid-body and now and then throttles
the whole session; the pipeline's retry logic is only tested if the sandbox does the same. Two kinds of faults:

- per request ("429", "503", "timeout", "truncated"): decided by hashing (seed, request target, time window,
  attempt at that target within the window) rather than drawing from a shared RNG stream, so concurrent
  requests in another interleaving meet the same faults; a retry draws afresh, and so does a plain rerun later
  (another window), as with real transient faults.
- "throttled": waves on the clock during which the platform answers every request like a throttled YouTube
  (the player response's session rate-limit or bot-check words, 429 on media, search and oEmbed). Whether and
  where a wave falls in each `wave_period_s` slot is hashed from (seed, slot): a backoff longer than the wave
  gets through, and a run at another time meets other waves.

The clock is injectable (`FaultInjector.clock`), so a test that pins it gets the same faults every time.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

REQUEST_KINDS = ("429", "503", "timeout", "truncated")
THROTTLED = "throttled"
FAULT_KINDS = (*REQUEST_KINDS, THROTTLED)
# What a throttled session is told on the watch page and player API (YouTube's words, as yt-dlp parses them).
THROTTLE_ANSWERS = ("session_rate_limited", "bot_check")


@dataclass(frozen=True)
class FaultConfig:
    """How often and which faults the sandbox server injects.

    rate: share in [0, 1] of faulty answers to platform endpoints (search, watch page, player API, oEmbed,
      media), split evenly over `kinds`: each per-request kind fails rate/len(kinds) of the requests;
      "throttled" throttles rate/len(kinds) of the time, as waves of `wave_s` seconds.
    kinds: "429" (Too Many Requests with Retry-After), "503" (Service Unavailable), "timeout" (stall `stall_s`
      seconds, then drop the connection without a response), "truncated" (Content-Length promises more than
      is sent), "throttled" (a throttled-session wave).
    window_s: per-request faults are drawn afresh in every window of this many seconds.
    """

    rate: float = 0.0
    seed: int = 0
    kinds: tuple[str, ...] = FAULT_KINDS
    stall_s: float = 2.0
    retry_after_s: int = 1
    window_s: float = 10.0
    wave_s: float = 3.0
    wave_period_s: float = 60.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"FaultConfig.rate must be in [0, 1], got {self.rate}")
        unknown = sorted(set(self.kinds) - set(FAULT_KINDS))
        if unknown or not self.kinds:
            raise ValueError(f"FaultConfig.kinds must be a non-empty subset of {FAULT_KINDS}, got {self.kinds}")
        if self.stall_s < 0 or self.retry_after_s < 0:
            raise ValueError("FaultConfig.stall_s and retry_after_s must be >= 0")
        if self.window_s <= 0 or not 0 < self.wave_s <= self.wave_period_s:
            raise ValueError("FaultConfig needs window_s > 0 and 0 < wave_s <= wave_period_s")

    @property
    def request_kinds(self) -> tuple[str, ...]:
        return tuple(kind for kind in self.kinds if kind != THROTTLED)

    @property
    def request_rate(self) -> float:
        """The share of requests that meet a per-request fault."""
        return self.rate * len(self.request_kinds) / len(self.kinds)

    @property
    def wave_chance(self) -> float:
        """The chance that a `wave_period_s` slot holds a throttled wave."""
        if THROTTLED not in self.kinds:
            return 0.0
        return min(1.0, self.rate / len(self.kinds) * self.wave_period_s / self.wave_s)


@dataclass(frozen=True)
class Fault:
    """One injected fault: its kind, and for a throttled wave what the platform says ("session_rate_limited",
    "bot_check")."""

    kind: str
    answer: str | None = None


def _unit_hash(*parts: object) -> float:
    """A deterministic float in [0, 1) from the parts (stable across processes, unlike hash())."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass
class FaultInjector:
    """Decides, per request, whether and how to fail it; counts attempts per target and window, and faults."""

    config: FaultConfig
    clock: Callable[[], float] = time.time  # seconds; tests pin or move it
    injected: Counter = field(default_factory=Counter, init=False)  # fault kind -> times injected
    _window: int | None = field(default=None, init=False, repr=False)
    _attempts: Counter = field(default_factory=Counter, init=False, repr=False)  # target -> tries this window
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def wave(self, now: float) -> str | None:
        """What a throttled session is told at `now`, or None outside the waves."""
        config = self.config
        slot = math.floor(now / config.wave_period_s)
        if _unit_hash(config.seed, "wave", slot) >= config.wave_chance:
            return None
        start = slot * config.wave_period_s + _unit_hash(config.seed, "wave-at", slot) * (
            config.wave_period_s - config.wave_s)
        if not start <= now < start + config.wave_s:
            return None
        return THROTTLE_ANSWERS[int(_unit_hash(config.seed, "wave-says", slot) * len(THROTTLE_ANSWERS))]

    def decide(self, target: str) -> Fault | None:
        """The fault for this request to `target` (path + query), or None to serve normally."""
        config, now = self.config, self.clock()
        if config.rate <= 0.0:
            return None
        answer = self.wave(now)
        if answer is not None:
            return self._count(Fault(THROTTLED, answer))
        window = math.floor(now / config.window_s)
        with self._lock:
            if window != self._window:
                self._window, self._attempts = window, Counter()
            attempt = self._attempts[target]
            self._attempts[target] += 1
        if not config.request_kinds or _unit_hash(config.seed, target, window, attempt, "fire") >= config.request_rate:
            return None
        kinds = config.request_kinds
        return self._count(Fault(kinds[int(_unit_hash(config.seed, target, window, attempt, "kind") * len(kinds))]))

    def _count(self, fault: Fault) -> Fault:
        with self._lock:
            self.injected[fault.kind] += 1
        return fault
