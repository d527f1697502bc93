"""The exchange with the crowd: task files go out, vote files come in.

A folder now (a bucket prefix later, behind the same methods): `{root}/tasks/{class_key}/{name}` holds the
exported task lists the crowd works from, `{root}/votes/{class_key}/{name}` the vote files the crowd returns
(the layout the inbox sensor relies on, see kinetics_assets/voting/inbox.py). Every write is atomic, so a reader
never sees half a file; paths are checked before they touch the filesystem.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import dagster as dg

from kinetics_assets.voting.inbox import SAFE_PART as _PART
from kinetics_assets.voting.inbox import InboxFile
from resources.storage import atomic_write_bytes

TASKS = "tasks"
VOTES = "votes"


def _checked(relpath: str) -> PurePosixPath:
    """`relpath` if it is `{class_key}/{name}` of safe characters; never absolute, never `..`, never hidden."""
    path = PurePosixPath(relpath)
    if len(path.parts) != 2 or not all(_PART.fullmatch(part) for part in path.parts):
        raise ValueError(f"crowd file path {relpath!r} must be '{{class_key}}/{{name}}' of [A-Za-z0-9_%.-] "
                         "not starting with '.'")
    return path


class CrowdInbox(dg.ConfigurableResource):
    """Task files for the crowd and vote files from it, under one folder."""

    root: str

    def _path(self, area: str, relpath: str) -> Path:
        return Path(self.root, area, *_checked(relpath).parts)

    def _list(self, area: str, class_key: str | None = None) -> list[Path]:
        base = Path(self.root, area)
        if class_key is not None:
            if not _PART.fullmatch(class_key):
                raise ValueError(f"class key {class_key!r} is not a safe folder name")
            base = base / class_key
        return sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else []

    def publish_tasks(self, relpath: str, data: bytes) -> Path:
        """Put a task file `{class_key}/{name}` where the crowd picks it up."""
        return atomic_write_bytes(self._path(TASKS, relpath), data)

    def task_files(self, class_key: str) -> list[str]:
        """Relative paths of the class's published task files (in-progress writes left out)."""
        root = Path(self.root, TASKS)
        return [p.relative_to(root).as_posix() for p in self._list(TASKS, class_key) if not p.name.startswith(".")]

    def read_tasks(self, relpath: str) -> bytes:
        return self._path(TASKS, relpath).read_bytes()

    def write_votes(self, relpath: str, data: bytes) -> Path:
        """Deliver a vote file `{class_key}/{name}.csv|json` (what the crowd, or its export job, does)."""
        return atomic_write_bytes(self._path(VOTES, relpath), data)

    def vote_files(self) -> list[InboxFile]:
        """Every file in the vote inbox with a version that changes with its content (size and mtime)."""
        root = Path(self.root, VOTES)
        entries = []
        for path in self._list(VOTES):
            stat = path.stat()
            entries.append(InboxFile(path.relative_to(root).as_posix(), f"{stat.st_size}-{stat.st_mtime_ns}"))
        return entries

    def read_votes(self, relpath: str) -> bytes:
        return self._path(VOTES, relpath).read_bytes()
