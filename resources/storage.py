"""Where the pipeline keeps what it makes: asset values (parquet) and artefacts (reports, tables, plots, clips).

Local filesystem in the sandbox profile; every write goes to a temporary name first and is renamed into place,
so a crash never leaves a file that looks finished.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from pathlib import Path

import dagster as dg
import pandas as pd

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


class LocalArtifactStore(dg.ConfigurableResource):
    """Reports, tables and plots that a curator opens: one folder tree under ``root``."""

    root: str

    def path(self, relpath: str) -> Path:
        return Path(self.root) / _safe_relative(relpath)

    def write_bytes(self, relpath: str, data: bytes) -> Path:
        return atomic_write_bytes(self.path(relpath), data)

    def write_text(self, relpath: str, text: str) -> Path:
        return self.write_bytes(relpath, text.encode("utf-8"))

    def write_csv(self, relpath: str, frame: pd.DataFrame) -> Path:
        return self.write_text(relpath, frame.to_csv(index=False))


class LocalParquetIOManager(dg.ConfigurableIOManager):
    """Asset values are DataFrames, stored as ``{base_dir}/{asset key}/{partition or _}.parquet``."""

    base_dir: str

    def _path(self, context: dg.OutputContext | dg.InputContext, partition_key: str | None) -> Path:
        return Path(self.base_dir, *context.asset_key.path, f"{partition_key or '_'}.parquet")

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        if not isinstance(obj, pd.DataFrame):
            raise TypeError(f"{context.asset_key.to_user_string()} returned {type(obj).__name__}, not a DataFrame")
        partition = context.partition_key if context.has_partition_key else None
        path = self._path(context, partition)
        atomic_write_bytes(path, obj.to_parquet(index=False))
        context.add_output_metadata({"rows": len(obj), "path": dg.MetadataValue.path(str(path)),
                                     "dagster/column_schema": column_schema(obj)})  # the catalog's columns

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        """One partition, or — for a downstream asset over many partitions — the ones materialized so far.

        A per-class asset is materialized only for the classes that needed it (those under the minimum, those
        with votes), so "all partitions" means the classes processed; the count is logged.
        """
        if not context.has_asset_partitions:
            return pd.read_parquet(self._path(context, None))
        keys = context.asset_partition_keys
        if len(keys) == 1:
            return pd.read_parquet(self._path(context, keys[0]))
        paths = [path for path in (self._path(context, key) for key in keys) if path.exists()]
        context.log.info(f"{context.asset_key.to_user_string()}: {len(paths)} of {len(keys)} partitions materialized")
        if not paths:
            raise FileNotFoundError(f"no partition of {context.asset_key.to_user_string()} is materialized yet")
        return pd.concat([pd.read_parquet(path) for path in paths], ignore_index=True)
