"""Which vote files in the crowd inbox are new, and which classes they concern: the pure part of the sensor.

Layout convention: a vote file lives at `{class_key}/{name}.csv` or `{class_key}/{name}.json` in the inbox, where
`class_key` is the class's partition key (kinetics_assets.partitions.class_key). The folder names the class, so
the sensor routes a file without opening it, and a file can only ever concern one class. (The alternative, reading
each file and mapping its task ids to classes, needs every exported task list in the sensor and would let one file
trigger many classes.)

A file's identity is (path, version), where the inbox supplies a version that changes whenever the content does
(size and mtime for a folder, the object generation for a bucket). The cursor records the version seen per path,
so a file is requested once, and again only when it is rewritten. Names starting with "." (files being written)
are left alone and not recorded: they are picked up once renamed. Files that break the convention (a subfolder,
a name outside SAFE_PART, such as one with a space, an unknown class) are recorded as seen and reported once in
`skipped`. The import of one class (class_vote_files) skips the same files, with the same reasons, so one odd
name never fails the class's other files.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

from kinetics_assets.partitions import class_name

VOTE_SUFFIXES = (".csv", ".json")
# One part of an inbox path: safe in any filesystem or bucket, never hidden, never "..".
SAFE_PART = re.compile(r"[A-Za-z0-9_%-][A-Za-z0-9_%.-]*")


@dataclass(frozen=True)
class InboxFile:
    path: str      # relative, "/"-separated
    version: str   # changes whenever the file's content changes


@dataclass(frozen=True)
class ClassBatch:
    """New vote files of one class: one run request."""

    class_key: str
    files: tuple[InboxFile, ...]

    @property
    def run_key(self) -> str:
        """Unique per (class, set of file versions): Dagster drops a request it has seen under the same key."""
        digest = hashlib.sha256("\n".join(f"{f.path}@{f.version}" for f in self.files).encode()).hexdigest()
        return f"votes-{self.class_key}-{digest[:16]}"


@dataclass(frozen=True)
class InboxScan:
    batches: tuple[ClassBatch, ...]          # sorted by class key, files sorted by path
    skipped: tuple[tuple[str, str], ...]     # (path, reason) of new files that break the layout convention
    cursor: str                              # pass back on the next scan


def decode_cursor(cursor: str | None) -> dict[str, str]:
    """The {path: version} map a cursor holds; None or "" is a fresh start."""
    if not cursor:
        return {}
    try:
        seen = json.loads(cursor)
    except json.JSONDecodeError:
        raise ValueError(f"inbox cursor is not JSON: {cursor[:80]!r}") from None
    if not isinstance(seen, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in seen.items()):
        raise ValueError("inbox cursor must map file paths to version strings")
    return seen


def _class_of(path: str, class_keys: Collection[str] | None) -> str:
    """The class key a file belongs to, or ValueError saying why the path breaks the convention."""
    parts = PurePosixPath(path).parts
    if len(parts) != 2:
        raise ValueError("expected {class_key}/{file name}")
    key, name = parts
    if not SAFE_PART.fullmatch(name):
        raise ValueError(f"file name {name!r} is not of [A-Za-z0-9_%.-] (not starting with '.')")
    if PurePosixPath(name).suffix.lower() not in VOTE_SUFFIXES:
        raise ValueError(f"not a vote file (expected {' or '.join(VOTE_SUFFIXES)})")
    class_name(key)  # raises for anything that is not a class key
    if class_keys is not None and key not in class_keys:
        raise ValueError(f"{key!r} is not one of the pipeline's classes")
    return key


def _hidden(path: str) -> bool:
    return any(part.startswith(".") for part in PurePosixPath(path).parts)


def scan_inbox(files: Iterable[InboxFile], cursor: str | None,
               class_keys: Collection[str] | None = None) -> InboxScan:
    """Group the files not yet seen (per the cursor) by class; the new cursor marks them seen."""
    seen = decode_cursor(cursor)
    by_class: dict[str, list[InboxFile]] = {}
    skipped = []
    for entry in sorted(files, key=lambda f: f.path):
        if _hidden(entry.path) or seen.get(entry.path) == entry.version:
            continue
        seen[entry.path] = entry.version
        try:
            by_class.setdefault(_class_of(entry.path, class_keys), []).append(entry)
        except ValueError as exc:
            skipped.append((entry.path, str(exc)))
    batches = tuple(ClassBatch(key, tuple(by_class[key])) for key in sorted(by_class))
    return InboxScan(batches, tuple(skipped), json.dumps(seen, sort_keys=True, separators=(",", ":")))


def class_vote_files(files: Iterable[InboxFile], class_key: str) -> tuple[list[InboxFile], list[tuple[str, str]]]:
    """The vote files of one class to import, sorted by path, and (path, reason) for the other files under the
    class's folder: those breaking the convention (as scan_inbox skips them) and hidden ones still being written."""
    chosen, skipped = [], []
    for entry in sorted(files, key=lambda f: f.path):
        if not entry.path.startswith(f"{class_key}/"):
            continue
        if _hidden(entry.path):
            skipped.append((entry.path, "hidden name (a file still being written): imported once renamed"))
            continue
        try:
            _class_of(entry.path, {class_key})
        except ValueError as exc:
            skipped.append((entry.path, str(exc)))
            continue
        chosen.append(entry)
    return chosen, skipped
