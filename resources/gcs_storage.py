"""The storage resources on Google Cloud Storage (the gcp profile), through dagster-gcp's ``GCSResource``.

One bucket holds what the sandbox profile keeps under ``KINETICS_HOME``: ``assets/`` (asset values),
``artifacts/`` (reports, plots, releases), ``clips/`` and ``crowd/`` (tasks out, votes in), under the same
relative names. Code that needs a local file (ffmpeg, decoders, the release writer) works in a local cache whose
layout mirrors the bucket; the bucket is the truth, the cache only saves downloads.

Atomicity: GCS makes an object visible only once its upload has completed, so a reader sees the old object or the
whole new one, never half; no temporary name and rename is needed. On top of that, writes that must not clobber
someone else's use generation preconditions: a clip is written once (``if_generation_match=0``; its name is its
content, so an object already there is the same clip and is kept), and a folder tree such as the releases is
uploaded with optimistic concurrency (new names create-only, changed names only over the generation read before
the work started), deepest files first and each folder's manifest and ``LATEST`` pointer last, so a reader that
finds a manifest finds every file it lists. Transient API errors (429, 5xx, resets) get the client's bounded
exponential backoff with jitter (``DEFAULT_RETRY``; every upload here is safe to repeat); others propagate.

Object names are checked like the local stores' paths before they reach a URL: relative, no ``..`` or ``.``,
no empty component, no control character, at most GCS's 1024 bytes.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import dagster as dg
from dagster_gcp import GCSResource
from google.api_core.exceptions import NotFound, PreconditionFailed
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY
from pydantic import PrivateAttr

from kinetics_assets.release.writer import LATEST, MANIFEST
from kinetics_assets.voting.inbox import SAFE_PART, InboxFile
from resources.clip_store import ClipStore, LocalClipStore, validate_relpath
from resources.crowd import TASKS, VOTES, CrowdInbox, _checked
from resources.storage import ArtifactStore, ParquetIOManager

MAX_NAME_BYTES = 1024  # GCS's limit on an object name
COMMIT_LAST = (MANIFEST, LATEST)  # within a folder, uploaded after every other file (readers start from them)


def checked_name(relpath: str) -> str:
    """``relpath`` as an object name, if it is relative, stays inside its prefix and is a name GCS accepts."""
    parts = relpath.split("/")
    if (not relpath or relpath.startswith("/") or any(part in ("", ".", "..") for part in parts)
            or any(ord(ch) < 32 or ord(ch) == 127 for ch in relpath) or len(relpath.encode("utf-8")) > MAX_NAME_BYTES):
        raise ValueError(f"object path {relpath!r} must be '/'-separated names (no empty, '.' or '..' part, no "
                         f"control character, at most {MAX_NAME_BYTES} bytes)")
    return relpath


def _md5(path: Path) -> str:
    """The file's MD5 as GCS reports it (base64 of the digest)."""
    with open(path, "rb") as handle:
        return base64.b64encode(hashlib.file_digest(handle, "md5").digest()).decode("ascii")


def read_object(uri: str) -> bytes:
    """The bytes of ``gs://bucket/name`` (what the catalog's ``path`` metadata names), with the environment's
    project and credentials."""
    bucket, _, name = uri.removeprefix("gs://").partition("/")
    client = GCSResource().get_client()
    return client.bucket(bucket).blob(checked_name(name)).download_as_bytes(retry=DEFAULT_RETRY)


class GCSBucket(dg.ConfigurableResource):
    """One bucket through dagster-gcp's GCSResource (credentials from the environment: Application Default
    Credentials, or none against ``STORAGE_EMULATOR_HOST``), and the local cache folder of its downloads."""

    gcs: GCSResource
    name: str
    cache_dir: str

    _clients: threading.local = PrivateAttr(default_factory=threading.local)

    def bucket(self) -> storage.Bucket:
        """This thread's bucket handle (one client a thread and process: clients keep a token and a session)."""
        if isinstance(self.name, dg.EnvVar):  # a raw resource would take the variable's name for the bucket's
            raise RuntimeError(f"bucket name {self.name!r} is an unresolved dg.EnvVar: use the resource through "
                               "Dagster (an asset, or dg.build_resources outside a run)")
        local = self._clients
        if getattr(local, "pid", None) != os.getpid():
            local.pid, local.bucket = os.getpid(), self.gcs.get_client().bucket(self.name)
        return local.bucket

    def uri(self, name: str) -> str:
        return f"gs://{self.name}/{name}"

    def cache_path(self, name: str) -> Path:
        return Path(self.cache_dir, self.name, *PurePosixPath(name).parts)

    def upload_bytes(self, name: str, data: bytes) -> str:
        self.bucket().blob(name).upload_from_string(data, retry=DEFAULT_RETRY)
        return self.uri(name)

    def upload_file(self, name: str, path: Path, if_generation_match: int | None = None) -> None:
        self.bucket().blob(name).upload_from_filename(str(path), if_generation_match=if_generation_match,
                                                      retry=DEFAULT_RETRY)

    def read(self, name: str) -> bytes | None:
        """The object's bytes, None when there is none."""
        try:
            return self.bucket().blob(name).download_as_bytes(retry=DEFAULT_RETRY)
        except NotFound:
            return None

    def exists(self, name: str) -> bool:
        return self.bucket().blob(name).exists(retry=DEFAULT_RETRY)

    def listing(self, prefix: str) -> dict[str, storage.Blob]:
        """Every object whose name is ``prefix`` or starts with ``prefix/``, by name."""
        found = self.bucket().client.list_blobs(self.name, prefix=prefix, retry=DEFAULT_RETRY)
        return {blob.name: blob for blob in found if blob.name == prefix or blob.name.startswith(prefix + "/")}

    def download(self, blob: storage.Blob) -> Path:
        """The object in the cache, downloaded unless the cached copy has its MD5 (temporary name, then rename)."""
        path = self.cache_path(blob.name)
        if path.is_file() and blob.md5_hash and _md5(path) == blob.md5_hash:
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
        os.close(handle)
        try:
            blob.download_to_filename(tmp, retry=DEFAULT_RETRY)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def sync_down(self, prefix: str) -> tuple[Path, dict[str, storage.Blob]]:
        """The cache's copy of everything under ``prefix`` brought up to the bucket's; returns its local path and
        the listing it was brought to (the generations a later ``sync_up`` may replace)."""
        listed = self.listing(prefix)
        for blob in listed.values():
            self.download(blob)
        return self.cache_path(prefix), listed

    def sync_up(self, prefix: str, listed: dict[str, storage.Blob]) -> list[str]:
        """Upload the cache's files under ``prefix`` that differ from ``listed`` (hidden names, work in progress,
        left out), with the preconditions and order of the module docstring; returns the names uploaded."""
        root = self.cache_path(prefix)
        files = [path for path in root.rglob("*") if path.is_file()] if root.is_dir() else (
            [root] if root.is_file() else [])
        changed = []
        for path in files:
            relative = path.relative_to(root).as_posix() if path != root else ""
            if any(part.startswith(".") for part in relative.split("/") if part):
                continue
            name = f"{prefix}/{relative}" if relative else prefix
            earlier = listed.get(name)
            if earlier is None or earlier.md5_hash != _md5(path):
                changed.append((name, path, 0 if earlier is None else earlier.generation))
        depth = lambda name: name.count("/")  # noqa: E731
        changed.sort(key=lambda item: (-depth(item[0]), PurePosixPath(item[0]).name in COMMIT_LAST, item[0]))
        for name, path, generation in changed:
            try:
                self.upload_file(name, path, if_generation_match=generation)
            except PreconditionFailed as err:
                raise RuntimeError(f"{self.uri(name)} was written by someone else while this run worked on "
                                   f"{self.uri(prefix)}; nothing of theirs was replaced: materialize again") from err
        return [name for name, _, _ in changed]


class GCSParquetIOManager(ParquetIOManager):
    """Asset values as parquet objects ``{prefix}/{asset key}/{partition or _}.parquet``.

    Parquet rather than dagster-gcp's ``GCSPickleIOManager``: the tables stay readable by any tool (BigQuery
    external tables, pandas, DuckDB) and across Python and pandas versions, and the catalog keeps each table's
    column schema; the partition handling (a downstream asset reading the classes materialized so far) is the
    local manager's, shared through ``ParquetIOManager``."""

    bucket: GCSBucket
    prefix: str = "assets"

    def _write(self, parts: tuple[str, ...], data: bytes) -> str:
        return self.bucket.upload_bytes(checked_name("/".join((self.prefix, *parts))), data)

    def _read(self, parts: tuple[str, ...]) -> bytes | None:
        return self.bucket.read(checked_name("/".join((self.prefix, *parts))))

    def _stored(self, context: dg.InputContext, keys: list[str]) -> list[str]:
        """One listing of the asset's objects, not a request per partition."""
        listed = self.bucket.listing(checked_name("/".join((self.prefix, *context.asset_key.path))))
        return [key for key in keys if checked_name("/".join((self.prefix, *self._parts(context, key)))) in listed]


class GCSArtifactStore(ArtifactStore):
    """Reports, tables, plots and releases under ``{prefix}/`` of the bucket.

    ``path`` gives a local copy (file or folder, from the cache) for code that reads files; ``folder`` lends a
    local folder whose additions and changes are uploaded when the block ends without error."""

    bucket: GCSBucket
    prefix: str = "artifacts"

    def _name(self, relpath: str) -> str:
        return f"{self.prefix}/{checked_name(relpath)}"

    def uri(self, relpath: str) -> str:
        return self.bucket.uri(self._name(relpath))

    def write_bytes(self, relpath: str, data: bytes) -> str:
        return self.bucket.upload_bytes(self._name(relpath), data)

    def path(self, relpath: str) -> Path:
        return self.bucket.sync_down(self._name(relpath))[0]

    def link(self, location: Path | str) -> dg.MetadataValue:
        """The object URI of what ``write_*`` stored, or of the cached copy ``path`` / ``folder`` gave."""
        if isinstance(location, Path):
            cached = self.bucket.cache_path(self.prefix)
            location = self.uri(Path(location).resolve().relative_to(cached.resolve()).as_posix())
        return dg.MetadataValue.path(location)

    @contextlib.contextmanager
    def folder(self, relpath: str) -> Iterator[Path]:
        name = self._name(relpath)
        local, listed = self.bucket.sync_down(name)
        local.mkdir(parents=True, exist_ok=True)
        yield local
        self.bucket.sync_up(name, listed)


class GCSClipStore(ClipStore):
    """Clips as objects ``{prefix}/{relpath}``; ffmpeg cuts them in a local staging folder, ``put`` uploads the
    finished file once (create-only) and keeps it in the local cache that ``path`` reads from."""

    bucket: GCSBucket
    prefix: str = "clips"

    def _cache(self) -> LocalClipStore:
        """The local side: staging folders, the sweep of dead processes' work, and the cached clips."""
        return LocalClipStore(root=str(self.bucket.cache_path(self.prefix)))

    def _name(self, relpath: str) -> str:
        return f"{self.prefix}/{validate_relpath(relpath)}"

    def uri(self, relpath: str) -> str:
        return self.bucket.uri(self._name(relpath))

    def exists(self, relpath: str) -> bool:
        return self.bucket.exists(self._name(relpath))

    def path(self, relpath: str) -> Path:
        """A local copy of the clip, downloaded when the cache lacks it (where it would be when it is stored
        nowhere, as the local store answers)."""
        local = self._cache().path(relpath)
        if not local.is_file():
            blob = self.bucket.bucket().get_blob(self._name(relpath), retry=DEFAULT_RETRY)
            if blob is not None:
                self.bucket.download(blob)
        return local

    def put(self, src: Path, relpath: str) -> str:
        name = self._name(relpath)
        try:
            self.bucket.upload_file(name, src, if_generation_match=0)
        except PreconditionFailed:  # stored already (a killed run's upload, or a concurrent one): keep that clip
            Path(src).unlink(missing_ok=True)
            self.path(relpath)
            return self.uri(relpath)
        self._cache().put(src, relpath)
        return self.uri(relpath)

    def staging(self) -> contextlib.AbstractContextManager[Path]:
        return self._cache().staging()

    def sweep_staging(self) -> int:
        return self._cache().sweep_staging()


class GCSCrowdInbox(CrowdInbox):
    """The crowd exchange as objects: ``{root}/tasks/{class_key}/{name}`` and ``{root}/votes/{class_key}/{name}``
    in the bucket (``root`` is the object prefix). A vote file's version is its object generation, which changes
    with every write."""

    bucket: GCSBucket
    root: str = "crowd"

    def _name(self, area: str, relpath: str) -> str:
        return "/".join((self.root, area, *_checked(relpath).parts))

    def _objects(self, area: str, class_key: str | None = None) -> dict[str, storage.Blob]:
        """Objects of ``area`` (of one class) by inbox-relative name; hidden names left out."""
        if class_key is not None and not SAFE_PART.fullmatch(class_key):
            raise ValueError(f"class key {class_key!r} is not a safe folder name")
        base = f"{self.root}/{area}"
        listed = self.bucket.listing(f"{base}/{class_key}" if class_key else base)
        relative = {name.removeprefix(base + "/"): blob for name, blob in listed.items()}
        return {name: relative[name] for name in sorted(relative)
                if not any(part.startswith(".") for part in name.split("/"))}

    def publish_tasks(self, relpath: str, data: bytes) -> str:
        return self.bucket.upload_bytes(self._name(TASKS, relpath), data)

    def task_files(self, class_key: str) -> list[str]:
        return list(self._objects(TASKS, class_key))

    def read_tasks(self, relpath: str) -> bytes:
        return self._read(TASKS, relpath)

    def write_votes(self, relpath: str, data: bytes) -> str:
        return self.bucket.upload_bytes(self._name(VOTES, relpath), data)

    def vote_files(self) -> list[InboxFile]:
        return [InboxFile(name, str(blob.generation)) for name, blob in self._objects(VOTES).items()]

    def read_votes(self, relpath: str) -> bytes:
        return self._read(VOTES, relpath)

    def _read(self, area: str, relpath: str) -> bytes:
        name = self._name(area, relpath)
        data = self.bucket.read(name)
        if data is None:
            raise FileNotFoundError(f"no crowd file {self.bucket.uri(name)}")
        return data

