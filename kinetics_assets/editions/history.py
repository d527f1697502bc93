"""Availability history: every answer the platform gave about a published video, and what they add up to.

A video is declared gone only after two permanent answers at least `gone_after` apart: one "removed" can be an
edge cache's mistake or a video briefly set private, so production waits a week (`CurationPolicy.gone_after_s`)
before a clip leaves the count. Transient, session-level (throttled, bot check) and not-yet-out answers say
nothing about the video and never count; a later "available" answer resets everything. The history lives in
the ledgers' database (a SQLite file or PostgreSQL, kept by the `Ledgers` resource), not in a sensor cursor, so
it survives restarts and serves every sensor, schedule and run alike.

Besides the append-only history the store keeps each video's current status (the fold of its answers, updated
in the same transaction) and the roster of published clips the link-rot sensor rotates through, so a tick
reads a bounded batch and a few per-class counts whatever the size of the release.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from kinetics_assets.acquisition.failures import Failure
from resources.ledger_database import LedgerLocation, connect

AVAILABLE = "available"
ANSWERS = (AVAILABLE, "permanent", "later", "transient", "session")  # "available" or the failure's persistence
STATUSES = ("available", "suspect", "gone", "unknown")  # suspect: one permanent answer, awaiting confirmation

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS availability_history (
    checked_at TEXT NOT NULL,
    youtube_id TEXT NOT NULL,
    answer TEXT NOT NULL CHECK (answer IN {ANSWERS}),
    category TEXT,
    reason TEXT{{rowid}}
);
CREATE INDEX IF NOT EXISTS history_by_video ON availability_history (youtube_id, checked_at);
CREATE INDEX IF NOT EXISTS history_by_time ON availability_history (checked_at);
CREATE TABLE IF NOT EXISTS video_status (
    youtube_id TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN {STATUSES}),
    permanent_since TEXT,
    checked_at TEXT NOT NULL,
    category TEXT,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS suspects_by_age ON video_status (permanent_since) WHERE status = 'suspect';
CREATE INDEX IF NOT EXISTS gone_videos ON video_status (youtube_id) WHERE status = 'gone';
CREATE TABLE IF NOT EXISTS published_clips (
    position INTEGER PRIMARY KEY,
    class_name TEXT NOT NULL,
    youtube_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS published_by_class ON published_clips (class_name, youtube_id);
CREATE INDEX IF NOT EXISTS published_by_video ON published_clips (youtube_id);
CREATE TABLE IF NOT EXISTS published_release (one INTEGER PRIMARY KEY CHECK (one = 1), release TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Answer:
    """What one probe of a video said: `answer` is "available" or the failure's persistence."""

    youtube_id: str
    answer: str
    category: str | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.answer not in ANSWERS:
            raise ValueError(f"answer must be one of {ANSWERS}, got {self.answer!r}")


def answer_of(youtube_id: str, failure: Failure | None) -> Answer:
    """The history row of a probe that ended with `failure` (None: the video plays)."""
    if failure is None:
        return Answer(youtube_id, AVAILABLE)
    return Answer(youtube_id, failure.category.persistence.value, failure.category.label, failure.message)


@dataclass(frozen=True)
class VideoStatus:
    """The fold of a video's answers; `permanent_since` is the first permanent answer not reset since."""

    status: str = "unknown"
    permanent_since: datetime.datetime | None = None
    category: str | None = None
    reason: str | None = None


def next_status(
    previous: VideoStatus, answer: Answer, at: datetime.datetime, gone_after: datetime.timedelta
) -> VideoStatus:
    """The rule: gone after two permanent answers `gone_after` apart; only "available" resets; the rest is noise."""
    if answer.answer == AVAILABLE:
        return VideoStatus(AVAILABLE)
    if answer.answer != "permanent":
        return previous
    if previous.permanent_since is None:
        return VideoStatus("suspect", at, answer.category, answer.reason)
    status = "gone" if at - previous.permanent_since >= gone_after else previous.status
    return replace(previous, status=status, category=answer.category, reason=answer.reason)


def _iso(at: datetime.datetime) -> str:
    if at.tzinfo is None:
        raise ValueError(f"history times must be timezone-aware, got {at!r}")
    return at.astimezone(datetime.UTC).isoformat(timespec="seconds")


def _status(row: tuple) -> VideoStatus:
    status, since, category, reason = row
    return VideoStatus(status, since and datetime.datetime.fromisoformat(since), category, reason)


@dataclass(frozen=True)
class PublishedClip:
    position: int
    class_name: str
    youtube_id: str


class AvailabilityHistory:
    """The history at `where` (a SQLite file or a PostgreSQL database; created if missing); thread-safe;
    close() when done."""

    def __init__(self, where: LedgerLocation) -> None:
        self._lock = threading.Lock()
        self._con = connect(where, "availability", timeout=30.0, synchronous="NORMAL", shared_by_threads=True)
        self._con.create_schema(_SCHEMA)

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> AvailabilityHistory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- answers and statuses ----------------------------------------------------------------------------------
    def record(self, answer: Answer, at: datetime.datetime, gone_after: datetime.timedelta) -> VideoStatus:
        """Append the answer and fold it into the video's status, in one transaction; returns the new status."""
        with self._lock:
            self._con.begin_write()
            try:
                row = self._con.execute("SELECT status, permanent_since, category, reason FROM video_status "
                                        "WHERE youtube_id = ?", (answer.youtube_id,)).fetchone()
                status = next_status(_status(row) if row else VideoStatus(), answer, at, gone_after)
                self._con.execute("INSERT INTO availability_history (checked_at, youtube_id, answer, category, "
                                  "reason) VALUES (?, ?, ?, ?, ?)",
                                  (_iso(at), answer.youtube_id, answer.answer, answer.category, answer.reason))
                self._con.execute(
                    "INSERT INTO video_status VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (youtube_id) DO UPDATE SET "
                    "status = excluded.status, permanent_since = excluded.permanent_since, "
                    "checked_at = excluded.checked_at, category = excluded.category, reason = excluded.reason",
                    (answer.youtube_id, status.status, status.permanent_since and _iso(status.permanent_since),
                     _iso(at), status.category, status.reason))
                self._con.execute("COMMIT")
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
        return status

    def statuses(self, youtube_ids: Iterable[str]) -> dict[str, VideoStatus]:
        """The current status of each id that has been probed (ids never probed are absent)."""
        ids = list(dict.fromkeys(youtube_ids))
        found: dict[str, VideoStatus] = {}
        with self._lock:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                rows = self._con.execute(
                    "SELECT youtube_id, status, permanent_since, category, reason FROM video_status "
                    f"WHERE youtube_id IN ({','.join('?' * len(chunk))})", chunk).fetchall()
                found.update((row[0], _status(row[1:])) for row in rows)
        return found

    def answers(self, youtube_id: str) -> list[tuple[str, Answer]]:
        """Every answer about the video, oldest first, with its time (ISO, UTC)."""
        with self._lock:
            rows = self._con.execute("SELECT checked_at, answer, category, reason FROM availability_history "
                                     "WHERE youtube_id = ? ORDER BY checked_at, rowid", (youtube_id,)).fetchall()
        return [(at, Answer(youtube_id, answer, category, reason)) for at, answer, category, reason in rows]

    def last_answer_at(self) -> datetime.datetime | None:
        """When the newest answer was recorded (None before the first): the moment the statuses stand for."""
        with self._lock:
            (newest,) = self._con.execute("SELECT MAX(checked_at) FROM availability_history").fetchone()
        return newest and datetime.datetime.fromisoformat(newest)

    def due_suspects(self, now: datetime.datetime, gone_after: datetime.timedelta, limit: int) -> list[str]:
        """Published videos with one permanent answer old enough that a second one would confirm it."""
        with self._lock:
            rows = self._con.execute(
                f"SELECT s.youtube_id FROM video_status s {self._con.indexed_by('suspects_by_age')} "
                "WHERE s.status = 'suspect' AND s.permanent_since <= ? "
                "AND EXISTS (SELECT 1 FROM published_clips p WHERE p.youtube_id = s.youtube_id) "
                "ORDER BY s.permanent_since LIMIT ?",
                (_iso(now - gone_after), limit)).fetchall()
        return [row[0] for row in rows]

    # -- the published roster ----------------------------------------------------------------------------------
    def release(self) -> str | None:
        """Which release the roster holds (as the caller named it), or None before the first."""
        with self._lock:
            row = self._con.execute("SELECT release FROM published_release").fetchone()
        return row and row[0]

    def replace_roster(self, release: str, clips: Iterable[Sequence[tuple[str, str]]]) -> int:
        """Make the roster the (class, video) pairs of `release`, given in chunks; returns the clips stored.

        One transaction: a reader sees the old roster or the whole new one, never a half-loaded release."""
        count = 0
        with self._lock:
            self._con.begin_write()
            try:
                self._con.execute("DELETE FROM published_clips")
                for chunk in clips:  # positions 1, 2, ... in the order given
                    self._con.executemany(
                        "INSERT INTO published_clips (position, class_name, youtube_id) VALUES (?, ?, ?)",
                        [(count + i, *clip) for i, clip in enumerate(chunk, start=1)])
                    count += len(chunk)
                self._con.execute("INSERT INTO published_release VALUES (1, ?) "
                                  "ON CONFLICT (one) DO UPDATE SET release = excluded.release", (release,))
                self._con.execute("COMMIT")
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
        return count

    def published_count(self) -> int:
        with self._lock:
            return self._con.execute("SELECT COALESCE(MAX(position), 0) FROM published_clips").fetchone()[0]

    def published_after(self, position: int, limit: int) -> list[PublishedClip]:
        """The next `limit` published clips after `position`, in roster order."""
        with self._lock:
            rows = self._con.execute("SELECT position, class_name, youtube_id FROM published_clips "
                                     "WHERE position > ? ORDER BY position LIMIT ?", (position, limit)).fetchall()
        return [PublishedClip(*row) for row in rows]

    def available_clips(self) -> dict[str, int]:
        """Published clips per class whose video is not declared gone (suspect and unknown still count).

        Counted as published minus gone: an index scan of the roster and a join of the (few) gone videos only."""
        with self._lock:
            published = self._con.execute(
                "SELECT class_name, COUNT(*) FROM published_clips GROUP BY class_name").fetchall()
            gone = dict(self._con.execute(
                f"SELECT p.class_name, COUNT(*) FROM video_status s {self._con.indexed_by('gone_videos')} "
                "JOIN published_clips p ON p.youtube_id = s.youtube_id WHERE s.status = 'gone' "
                "GROUP BY p.class_name").fetchall())
        return {name: count - gone.get(name, 0) for name, count in published}
