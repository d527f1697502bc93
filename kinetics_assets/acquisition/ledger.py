"""The acquisition ledger: one database row per requested clip, so reruns only redo what can still succeed.

A row is `done` (with its store path), `permanent_failure` (never retried) or `transient_failure` (retried
next run); attempts and downloads accumulate across runs, which is how a rerun proves it fetched nothing twice.
Many worker threads share one connection (serialized); on SQLite, WAL mode lets a reader in another process
share the file, and on PostgreSQL (resources/ledger_database.py) every process of a deployment shares it.
The key is the request's clip key (see clips.ClipRequest.key): the clip id when the window is given, the
video id when localization chooses it, each under the request's store folder.
"""

from __future__ import annotations

import datetime
import threading
from dataclasses import dataclass
from typing import Self

from kinetics_assets.acquisition.failures import FailureCategory
from resources.ledger_database import LedgerLocation, connect

STATUSES = ("done", "permanent_failure", "transient_failure")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS clips (
    clip_key TEXT PRIMARY KEY,
    clip_id TEXT,
    youtube_id TEXT NOT NULL,
    relpath TEXT,
    time_start {real},
    time_end {real},
    status TEXT NOT NULL CHECK (status IN ('done', 'permanent_failure', 'transient_failure')),
    category TEXT,
    message TEXT,
    attempts INTEGER NOT NULL,
    downloads INTEGER NOT NULL,
    short_source INTEGER,
    source_width INTEGER,
    source_height INTEGER,
    first_attempt_at TEXT NOT NULL,
    last_attempt_at TEXT NOT NULL
)
"""
_FIELDS = ("clip_key", "clip_id", "youtube_id", "relpath", "time_start", "time_end", "status", "category",
           "message", "attempts", "downloads", "short_source", "source_width", "source_height",
           "first_attempt_at", "last_attempt_at")


@dataclass(frozen=True)
class LedgerEntry:
    clip_key: str
    clip_id: str | None
    youtube_id: str
    relpath: str | None
    time_start: float | None
    time_end: float | None
    status: str
    category: str | None
    message: str | None
    attempts: int
    downloads: int
    short_source: bool | None
    source_width: int | None
    source_height: int | None
    first_attempt_at: str
    last_attempt_at: str

    @property
    def failed_for_good(self) -> bool:
        """A permanent failure in a category that is still permanent: ledgers written before session-level
        answers had their own kind hold bot checks and session rate limits as permanent, and those are retried."""
        if self.status != "permanent_failure":
            return False
        try:
            return FailureCategory.from_label(self.category or "").permanent
        except ValueError:
            return False


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


class ClipLedger:
    """The ledger at `where` (a SQLite file or a PostgreSQL database; created if missing); thread-safe;
    close() when done."""

    def __init__(self, where: LedgerLocation) -> None:
        self._lock = threading.Lock()
        self._con = connect(where, "clips", timeout=30.0, synchronous="NORMAL", shared_by_threads=True)
        self._con.create_schema(_SCHEMA)

    def get(self, clip_key: str) -> LedgerEntry | None:
        with self._lock:
            row = self._con.execute(f"SELECT {', '.join(_FIELDS)} FROM clips WHERE clip_key = ?",
                                    (clip_key,)).fetchone()
        return None if row is None else _entry(row)

    def entries(self) -> list[LedgerEntry]:
        with self._lock:
            rows = self._con.execute(f"SELECT {', '.join(_FIELDS)} FROM clips ORDER BY clip_key").fetchall()
        return [_entry(row) for row in rows]

    def record(
        self,
        clip_key: str,
        youtube_id: str,
        status: str,
        attempts: int,
        *,
        clip_id: str | None = None,
        relpath: str | None = None,
        time_start: float | None = None,
        time_end: float | None = None,
        category: str | None = None,
        message: str | None = None,
        downloaded: bool = False,
        short_source: bool | None = None,
        source_width: int | None = None,
        source_height: int | None = None,
    ) -> LedgerEntry:
        """Write this run's outcome for a clip; attempts (and a download) add to what earlier runs recorded."""
        if status not in STATUSES:
            raise ValueError(f"ledger status must be one of {STATUSES}, got {status!r}")
        now = _now()
        values = (clip_key, clip_id, youtube_id, relpath, time_start, time_end, status, category, message,
                  attempts, int(downloaded), None if short_source is None else int(short_source),
                  source_width, source_height, now, now)
        with self._lock:
            self._con.execute(
                f"INSERT INTO clips ({', '.join(_FIELDS)}) VALUES ({', '.join('?' * len(_FIELDS))}) "
                "ON CONFLICT(clip_key) DO UPDATE SET clip_id = excluded.clip_id, relpath = excluded.relpath, "
                "time_start = excluded.time_start, time_end = excluded.time_end, status = excluded.status, "
                "category = excluded.category, message = excluded.message, "
                "attempts = clips.attempts + excluded.attempts, downloads = clips.downloads + excluded.downloads, "
                "short_source = excluded.short_source, source_width = excluded.source_width, "
                "source_height = excluded.source_height, last_attempt_at = excluded.last_attempt_at",
                values,
            )
            row = self._con.execute(f"SELECT {', '.join(_FIELDS)} FROM clips WHERE clip_key = ?",
                                    (clip_key,)).fetchone()
        return _entry(row)

    def close(self) -> None:
        with self._lock:
            self._con.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _entry(row: tuple) -> LedgerEntry:
    entry = dict(zip(_FIELDS, row))
    if entry["short_source"] is not None:
        entry["short_source"] = bool(entry["short_source"])
    return LedgerEntry(**entry)
