"""Where the pipeline keeps what it makes: asset values (parquet) and artefacts (reports, tables, plots, clips).

Local filesystem in the sandbox profile; every write goes to a temporary name first and is renamed into place,
so a crash never leaves a file that looks finished.
"""

from __future__ import annotations

import contextlib
import io
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field

from kinetics_assets.metadata import column_schema


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def connect_wal(path: Path, timeout: float = 60.0, **kwargs) -> sqlite3.Connection:
    """A SQLite connection in WAL mode, so concurrent runs can share a ledger.

    Switching a fresh database to WAL takes an exclusive lock and fails at once ("database is locked")
    instead of waiting when another process does the same, so that step is retried until ``timeout``.
    """
    deadline = time.monotonic() + timeout
    con = sqlite3.connect(path, timeout=timeout, isolation_level=None, **kwargs)
    while True:
        try:
            con.execute("PRAGMA journal_mode=WAL")
            return con
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                con.close()
                raise
            time.sleep(0.05)


def _safe_relative(relpath: str) -> Path:
    relative = Path(relpath)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise ValueError(f"store path {relpath!r} must be relative and stay inside the store")
    return relative


class ArtifactStore(dg.ConfigurableResource):
    """Interface of the artefact store (see LocalArtifactStore and resources/gcs_storage.py's GCS one)."""

    def write_bytes(self, relpath: str, data: bytes) -> Path | str:
        """Store ``data`` at ``relpath`` atomically; returns where it went (a local path or an object URI)."""
        raise NotImplementedError(f"{type(self).__name__} must define write_bytes")

    def path(self, relpath: str) -> Path:
        """A local path holding ``relpath``'s current content (a file or a folder), for code that reads files."""
        raise NotImplementedError(f"{type(self).__name__} must define path")

    def folder(self, relpath: str) -> contextlib.AbstractContextManager[Path]:
        """A local folder holding ``relpath``'s content, for code that writes a tree of files; what the block
        adds or changes is stored when it ends without error."""
        raise NotImplementedError(f"{type(self).__name__} must define folder")

    def link(self, location: Path | str) -> dg.MetadataValue:
        """Catalog metadata pointing at a stored file or folder (what ``write_*``, ``path`` or ``folder`` gave)."""
        raise NotImplementedError(f"{type(self).__name__} must define link")

    def write_text(self, relpath: str, text: str) -> Path | str:
        return self.write_bytes(relpath, text.encode("utf-8"))

    def write_csv(self, relpath: str, frame: pd.DataFrame) -> Path | str:
        return self.write_text(relpath, frame.to_csv(index=False))


class LocalArtifactStore(ArtifactStore):
    """Reports, tables and plots that a curator opens: one folder tree under ``root``.

    A browser will not open a ``file://`` link from the UI's http page, so ``kinetics ui`` also serves ``root``
    read-only at ``files_url`` and materializations link there (``link``)."""

    root: str
    files_url: str = Field(default="", description="Where `kinetics ui` serves `root` over HTTP (127.0.0.1); "
                                                    "empty: metadata shows plain paths.")

    def path(self, relpath: str) -> Path:
        return Path(self.root) / _safe_relative(relpath)

    def link(self, path: Path) -> dg.MetadataValue:
        """A clickable URL of a file or folder under ``root`` (a folder lists its files), else its path."""
        relative = Path(path).resolve().relative_to(Path(self.root).resolve())
        if not self.files_url:
            return dg.MetadataValue.path(str(path))
        suffix = "/" if Path(path).is_dir() else ""
        return dg.MetadataValue.url(f"{self.files_url.rstrip('/')}/{quote(relative.as_posix())}{suffix}")

    def write_bytes(self, relpath: str, data: bytes) -> Path:
        return atomic_write_bytes(self.path(relpath), data)

    @contextlib.contextmanager
    def folder(self, relpath: str) -> Iterator[Path]:
        """The folder itself: what is written into it is stored already."""
        path = self.path(relpath)
        path.mkdir(parents=True, exist_ok=True)
        yield path


def parquet_frame(data: bytes, columns: Sequence[str] | None = None, text_as_categories: bool = False
                  ) -> pd.DataFrame:
    """The table in parquet ``data``: all its columns, or those of ``columns`` it has; text columns as
    categoricals if asked (see ``PartitionTables``)."""
    if columns is None and not text_as_categories:
        return pd.read_parquet(io.BytesIO(data))
    schema = pq.read_schema(io.BytesIO(data))
    present = None if columns is None else [name for name in columns if name in schema.names]
    text = [field.name for field in schema if (present is None or field.name in present) and text_as_categories
            and (pa.types.is_string(field.type) or pa.types.is_large_string(field.type))]
    return pq.read_table(io.BytesIO(data), columns=present, read_dictionary=text).to_pandas()


@dataclass(frozen=True)
class PartitionTables(Sequence[pd.DataFrame]):
    """A per-partition asset's stored partitions as one input, each read when it is asked for (as often as asked,
    whole or only some columns).

    Annotate an input with this type instead of ``pd.DataFrame`` when the downstream asset can consume the tables
    in turn: it then never holds every partition and their concatenation at once (``duplicate_clusters`` over a
    million clips' fingerprints: 6 GiB of concatenated frame otherwise). Text columns come as categoricals: one
    Python string per distinct value, not per row (reading 1M clips' fingerprints: 26.5 instead of 38.1 CPU s)."""

    names: tuple[str, ...]                                          # "asset/partition", in partition order
    load: Callable[[int, tuple[str, ...] | None], pd.DataFrame]     # table i: all columns, or those it has of these

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> pd.DataFrame:
        if not isinstance(i, int) or not -len(self) <= i < len(self):
            raise IndexError(f"table {i!r} of {len(self)}")
        return self.load(i % len(self), None)

    def __iter__(self) -> Iterator[pd.DataFrame]:
        return (self.load(i, None) for i in range(len(self)))

    def columns(self, i: int, names: Sequence[str]) -> pd.DataFrame:
        """Table i's columns among ``names`` (parquet reads only those)."""
        return self.load(i, tuple(names))

    def __add__(self, other: PartitionTables) -> PartitionTables:
        first = len(self)
        return PartitionTables(self.names + other.names,
                               lambda i, names: self.load(i, names) if i < first else other.load(i - first, names))

    @classmethod
    def of(cls, frames: Sequence[pd.DataFrame], asset: str = "tables") -> PartitionTables:
        """Tables already in memory."""
        frames = list(frames)

        def load(i: int, names: tuple[str, ...] | None) -> pd.DataFrame:
            return frames[i] if names is None else frames[i][[name for name in names if name in frames[i].columns]]

        return cls(tuple(f"{asset}/{i}" for i in range(len(frames))), load)


class ParquetIOManager(dg.ConfigurableIOManager):
    """Asset values are DataFrames, stored as parquet at ``{asset key}/{partition or _}.parquet`` (with their column
    schema in the catalog); where those bytes live is the subclass's ``_write`` / ``_read`` / ``_stored``."""

    def _write(self, parts: tuple[str, ...], data: bytes) -> str:
        """Store ``data`` at ``parts`` atomically; returns where it went (shown in the catalog)."""
        raise NotImplementedError(f"{type(self).__name__} must define _write")

    def _read(self, parts: tuple[str, ...]) -> bytes | None:
        """The bytes at ``parts``, None when nothing is stored there."""
        raise NotImplementedError(f"{type(self).__name__} must define _read")

    def _stored(self, context: dg.InputContext, keys: list[str]) -> list[str]:
        """Which of the partitions ``keys`` of the input's asset are stored (without reading them)."""
        raise NotImplementedError(f"{type(self).__name__} must define _stored")

    @staticmethod
    def _parts(context: dg.OutputContext | dg.InputContext, partition_key: str | None) -> tuple[str, ...]:
        return (*context.asset_key.path, f"{partition_key or '_'}.parquet")

    def _load(self, context: dg.InputContext, partition_key: str | None, columns: Sequence[str] | None = None,
              text_as_categories: bool = False) -> pd.DataFrame:
        data = self._read(self._parts(context, partition_key))
        if data is None:
            where = f" partition {partition_key}" if partition_key else ""
            raise FileNotFoundError(f"{context.asset_key.to_user_string()}{where} is not materialized yet")
        return parquet_frame(data, columns, text_as_categories)

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        if not isinstance(obj, pd.DataFrame):
            raise TypeError(f"{context.asset_key.to_user_string()} returned {type(obj).__name__}, not a DataFrame")
        partition = context.partition_key if context.has_partition_key else None
        where = self._write(self._parts(context, partition), obj.to_parquet(index=False))
        context.add_output_metadata({"rows": len(obj), "path": dg.MetadataValue.path(where),
                                     "dagster/column_schema": column_schema(obj)})  # the catalog's columns

    def load_input(self, context: dg.InputContext) -> pd.DataFrame | PartitionTables:
        """One partition, or — for a downstream asset over many partitions — the ones materialized so far:
        concatenated, or one at a time where the input is annotated ``PartitionTables``.

        A per-class asset is materialized only for the classes that needed it (those under the minimum, those
        with votes), so "all partitions" means the classes processed; the count is logged.
        """
        lazy = context.dagster_type.typing_type is PartitionTables
        if not context.has_asset_partitions:
            if lazy:
                raise TypeError(f"{context.asset_key.to_user_string()} is not partitioned: load it as a DataFrame")
            return self._load(context, None)
        keys = list(context.asset_partition_keys)
        if len(keys) == 1 and not lazy:
            return self._load(context, keys[0])
        stored = self._stored(context, keys)
        context.log.info(f"{context.asset_key.to_user_string()}: {len(stored)} of {len(keys)} partitions materialized")
        if not stored:
            raise FileNotFoundError(f"no partition of {context.asset_key.to_user_string()} is materialized yet")
        if lazy:
            asset = context.asset_key.to_user_string()
            return PartitionTables(tuple(f"{asset}/{key}" for key in stored),
                                   lambda i, columns: self._load(context, stored[i], columns, text_as_categories=True))
        return pd.concat([self._load(context, key) for key in stored], ignore_index=True)


class LocalParquetIOManager(ParquetIOManager):
    """Asset values under ``base_dir`` on the local filesystem."""

    base_dir: str

    def _write(self, parts: tuple[str, ...], data: bytes) -> str:
        return str(atomic_write_bytes(Path(self.base_dir, *parts), data))

    def _read(self, parts: tuple[str, ...]) -> bytes | None:
        path = Path(self.base_dir, *parts)
        return path.read_bytes() if path.is_file() else None

    def _stored(self, context: dg.InputContext, keys: list[str]) -> list[str]:
        return [key for key in keys if Path(self.base_dir, *self._parts(context, key)).is_file()]
