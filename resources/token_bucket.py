"""Token buckets: the arithmetic of a request budget, kept in memory or in a row of the ledgers' database.

Waiting is reservation-based: a caller that finds the bucket empty books its token (the bank goes negative)
and sleeps until it is due, outside any lock, so concurrent callers queue in arrival order instead of polling.
`TokenBucket` holds its bank in memory (one process; pure tests); `SharedTokenBucket` holds it in a database
row (a SQLite file or PostgreSQL) updated in a write transaction that excludes every other writer, so every
process that opens the same database and name draws on one budget. Clock and sleep are injectable so the
arithmetic is testable without time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import closing

from resources.ledger_database import LedgerLocation, connect

Change = Callable[[float], float]


class Bucket:
    """`rate_per_s` tokens a second, at most `burst` banked; `acquire` blocks until a token is due.

    The arithmetic of every bucket; subclasses keep the bank (`_transact`)."""

    def __init__(
        self,
        rate_per_s: float,
        burst: float,
        clock: Callable[[], float],
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

    def _refilled(self, tokens: float, updated: float, now: float) -> float:
        """The bank at `now`; a clock that stepped back refills nothing (and takes nothing)."""
        return min(self.burst, tokens + max(0.0, now - updated) * self.rate_per_s)

    def _transact(self, change: Change) -> float:
        """Refill the bank to now and replace it by `change(bank)`, atomically; returns the bank `change` saw."""
        raise NotImplementedError

    def available(self) -> float:
        """Tokens banked now (negative while callers are waiting on booked tokens)."""
        return self._transact(lambda tokens: tokens)

    def try_acquire(self, tokens: float = 1.0) -> bool:
        """Take `tokens` if they are banked now; never waits."""
        self._check(tokens)
        banked = self._transact(lambda bank: bank - tokens if bank >= tokens else bank)
        return banked >= tokens

    def acquire(self, tokens: float = 1.0) -> float:
        """Book `tokens` and sleep until they are due; returns the seconds waited."""
        self._check(tokens)
        banked = self._transact(lambda bank: bank - tokens)
        wait = max(0.0, (tokens - banked) / self.rate_per_s)
        if wait > 0:
            self._sleep(wait)
        return wait

    def _check(self, tokens: float) -> None:
        if not 0 < tokens <= self.burst:
            raise ValueError(f"can take between 0 and burst={self.burst:g} tokens at once, asked for {tokens}")


class TokenBucket(Bucket):
    """A bucket whose bank is in this process's memory (one process; pure tests)."""

    def __init__(
        self,
        rate_per_s: float,
        burst: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(rate_per_s, burst, clock, sleep)
        self._lock = threading.Lock()
        self._tokens = self.burst
        self._updated = clock()

    def _transact(self, change: Change) -> float:
        with self._lock:
            now = self._clock()
            tokens = self._refilled(self._tokens, self._updated, now)
            self._tokens, self._updated = change(tokens), now
            return tokens


_SCHEMA = ("CREATE TABLE IF NOT EXISTS rate_budgets "
           "(name TEXT PRIMARY KEY, tokens {real} NOT NULL, updated {real} NOT NULL)")


class SharedTokenBucket(Bucket):
    """The budget `name` in the database at `where`, shared by every thread and process that opens it.

    Each take is one short write transaction (one writer at a time, across processes); the sleep for a booked
    token happens after commit. The clock is wall time, which all processes of a machine (and NTP-synchronized
    machines) share. A process killed while it waits loses only its booked token.
    """

    def __init__(
        self,
        where: LedgerLocation,
        name: str,
        rate_per_s: float,
        burst: float,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(rate_per_s, burst, clock, sleep)
        self.where, self.name = where, name
        with closing(self._connect()) as con:
            con.create_schema(_SCHEMA)

    def _connect(self):
        # synchronous=NORMAL: a lost last update after a power cut only lends a few tokens
        return connect(self.where, "rate_budgets", timeout=60.0, synchronous="NORMAL")

    def _transact(self, change: Change) -> float:
        with closing(self._connect()) as con:
            con.begin_write()
            try:
                now = self._clock()
                row = con.execute("SELECT tokens, updated FROM rate_budgets WHERE name = ?", (self.name,)).fetchone()
                tokens = self._refilled(*row, now) if row else self.burst
                con.execute(
                    "INSERT INTO rate_budgets (name, tokens, updated) VALUES (?, ?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET tokens = excluded.tokens, updated = excluded.updated",
                    (self.name, change(tokens), now),
                )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            return tokens
