"""The sandbox platform's 'today', shared by every process that serves the same world.

Each process that touches the platform (the demo, the code server evaluating sensors, every run worker) starts
its own `SandboxServer`; for a year to pass on the platform for all of them at once, its date lives in a small
file that each server reads on every request. Only the sandbox reads it: to the pipeline, time passing is just
the platform answering differently. `kinetics sandbox clock` shows and moves it.
"""

from __future__ import annotations

import datetime
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class FileClock:
    """The date in `path` (YYYY-MM-DD), or `default` while the file does not exist; re-read when it changes."""

    path: Path
    default: datetime.date
    _seen: tuple[int, datetime.date] | None = field(default=None, repr=False)

    def today(self) -> datetime.date:
        try:
            changed = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return self.default
        if self._seen is None or self._seen[0] != changed:
            self._seen = changed, read_date(self.path)
        return self._seen[1]

    def set(self, day: datetime.date) -> None:
        """Move the platform to `day` for every process (atomically: a reader sees the old date or the new)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        with os.fdopen(handle, "w") as out:
            out.write(day.isoformat() + "\n")
        os.replace(temp, self.path)


def read_date(path: Path) -> datetime.date:
    text = path.read_text().strip()
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"sandbox clock file {path}: {text!r} is not a date (YYYY-MM-DD)") from None
