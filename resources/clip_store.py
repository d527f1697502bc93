"""Where finished clips live: an interface (put / exists / path / uri / staging) and a local-filesystem store.

Clips are addressed by a store-relative path such as `train/abseiling/{youtube_id}_{start:06d}_{end:06d}.mp4`.
Work in progress happens in a per-process staging folder inside the store and a finished file is moved into
place by one atomic rename, so a killed process never leaves a file that looks finished; staging folders of
processes that are no longer alive are swept on the next run. A GCS store implements the same interface later.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from dagster import ConfigurableResource

from resources.processes import pid_alive

STAGING_DIR = ".staging"
_PART = re.compile(r"[A-Za-z0-9_%(),'+-][A-Za-z0-9 _%(),.'+-]*")


def validate_relpath(relpath: str) -> str:
    """A store path made only of plain components: no absolute paths, `..`, hidden or odd names."""
    parts = relpath.split("/")
    if not relpath or any(not _PART.fullmatch(part) or part in (".", "..") for part in parts):
        raise ValueError(f"clip path {relpath!r} must be '/'-separated plain names "
                         "(letters, digits, space and _%(),.'+-; no '..', no leading dot)")
    return relpath


class ClipStore(ConfigurableResource):
    """Interface of clip storage; see LocalClipStore."""

    def put(self, src: Path, relpath: str) -> str:
        """Move the finished file `src` (from `staging()`) to `relpath` atomically; returns its uri."""
        raise NotImplementedError(f"{type(self).__name__} must define put")

    def exists(self, relpath: str) -> bool:
        raise NotImplementedError(f"{type(self).__name__} must define exists")

    def path(self, relpath: str) -> Path:
        """A local path to read the clip from."""
        raise NotImplementedError(f"{type(self).__name__} must define path")

    def uri(self, relpath: str) -> str:
        raise NotImplementedError(f"{type(self).__name__} must define uri")

    def staging(self) -> contextlib.AbstractContextManager[Path]:
        """A fresh private folder for one download, removed afterwards whatever happens."""
        raise NotImplementedError(f"{type(self).__name__} must define staging")

    def sweep_staging(self) -> int:
        """Remove work left by dead processes; returns how many folders went."""
        raise NotImplementedError(f"{type(self).__name__} must define sweep_staging")


class LocalClipStore(ClipStore):
    """Clips under `root` on the local filesystem (staging inside `root`, so `put` is a same-disk rename)."""

    root: str

    def path(self, relpath: str) -> Path:
        return Path(self.root) / validate_relpath(relpath)

    def uri(self, relpath: str) -> str:
        return self.path(relpath).resolve().as_uri()

    def exists(self, relpath: str) -> bool:
        return self.path(relpath).is_file()

    def put(self, src: Path, relpath: str) -> str:
        dest = self.path(relpath)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(src, dest)
        except OSError as err:
            if err.errno != errno.EXDEV:  # src on another disk: copy beside dest, then rename
                raise
            handle, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".partial")
            os.close(handle)
            try:
                shutil.copyfile(src, tmp)
                os.replace(tmp, dest)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return self.uri(relpath)

    def _staging_root(self) -> Path:
        return Path(self.root) / STAGING_DIR

    @contextlib.contextmanager
    def staging(self) -> Iterator[Path]:
        folder = self._staging_root() / f"{os.getpid()}-{uuid.uuid4().hex}"
        folder.mkdir(parents=True)
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def sweep_staging(self) -> int:
        swept = 0
        root = self._staging_root()
        for folder in root.iterdir() if root.is_dir() else ():
            pid = folder.name.split("-", 1)[0]
            if not pid.isdigit() or not pid_alive(int(pid)):
                shutil.rmtree(folder, ignore_errors=True)
                swept += 1
        return swept
