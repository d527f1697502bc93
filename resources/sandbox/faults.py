"""Reproducible fault injection for the sandbox platform.

A real video platform rate-limits, has outages, stalls and drops connections mid-body; the
pipeline's retry logic is only tested if the sandbox does the same. Faults are decided by
hashing (seed, request target, per-target attempt number) rather than drawing from a shared
RNG stream, so the same seed and the same requests give the same faults even when requests
arrive concurrently in a different interleaving.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from dataclasses import dataclass, field

FAULT_KINDS = ("429", "503", "timeout", "truncated")


@dataclass(frozen=True)
class FaultConfig:
    """How often and which faults the sandbox server injects.

    rate: probability in [0, 1] that a request to a platform endpoint (search, watch page,
      player API, oEmbed, media) fails.
    kinds: the faults to draw from, uniformly: "429" (Too Many Requests with Retry-After),
      "503" (Service Unavailable), "timeout" (stall `stall_s` seconds, then drop the
      connection without a response), "truncated" (Content-Length promises more than is sent).
    """

    rate: float = 0.0
    seed: int = 0
    kinds: tuple[str, ...] = FAULT_KINDS
    stall_s: float = 2.0
    retry_after_s: int = 1

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"FaultConfig.rate must be in [0, 1], got {self.rate}")
        unknown = sorted(set(self.kinds) - set(FAULT_KINDS))
        if unknown or not self.kinds:
            raise ValueError(f"FaultConfig.kinds must be a non-empty subset of {FAULT_KINDS}, got {self.kinds}")
        if self.stall_s < 0 or self.retry_after_s < 0:
            raise ValueError("FaultConfig.stall_s and retry_after_s must be >= 0")


def _unit_hash(*parts: object) -> float:
    """A deterministic float in [0, 1) from the parts (stable across processes, unlike hash())."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass
class FaultInjector:
    """Decides, per request, whether and how to fail it; counts attempts per target and faults injected."""

    config: FaultConfig
    injected: Counter = field(default_factory=Counter, init=False)  # fault kind -> times injected
    _attempts: Counter = field(default_factory=Counter, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def decide(self, target: str) -> str | None:
        """The fault kind for this attempt at `target` (path + query), or None to serve normally."""
        with self._lock:
            attempt = self._attempts[target]
            self._attempts[target] += 1
        if self.config.rate <= 0.0 or _unit_hash(self.config.seed, target, attempt, "fire") >= self.config.rate:
            return None
        kind = self.config.kinds[int(_unit_hash(self.config.seed, target, attempt, "kind") * len(self.config.kinds))]
        with self._lock:
            self.injected[kind] += 1
        return kind
