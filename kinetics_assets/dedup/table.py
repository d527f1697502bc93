"""Many clips' fingerprints in flat arrays, read from the per-frame tables the fingerprint assets store.

The stored tables have one row per hashed frame and repeat the clip's columns (id, class, path, ...) on every
row. At a million clips that is 20M rows: a pandas group or a ``Fingerprint`` object per clip, or a Python
look-up per clip and column, costs minutes and gigabytes. Here the clip ids are factorized once, the frames
keep one (n, 11) uint64 matrix in clip order, and the clip columns are taken once per clip.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kinetics_assets.dedup.fingerprint import HASH_COLUMNS, Fingerprint
from resources.storage import PartitionTables


@dataclass(frozen=True)
class FingerprintTable(Sequence[Fingerprint]):
    """Clip k (``ids[k]``, ascending) has frames ``offsets[k]:offsets[k + 1]`` of the frame arrays; indexing gives
    its ``Fingerprint`` (views, no copy)."""

    ids: np.ndarray         # (clips,) str, ascending
    offsets: np.ndarray     # (clips + 1,) int64
    times: np.ndarray       # (frames,) float64
    hashes: np.ndarray      # (frames, len(HASH_COLUMNS)) uint64
    detail: np.ndarray      # (frames,) float32
    durations: np.ndarray   # (clips,) float64

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, k):
        if isinstance(k, slice):
            raise TypeError("FingerprintTable takes one clip position, not a slice")
        lo, hi = int(self.offsets[k]), int(self.offsets[k + 1])
        return Fingerprint(self.times[lo:hi], self.hashes[lo:hi], float(self.durations[k]), self.detail[lo:hi])

    def __iter__(self) -> Iterator[Fingerprint]:
        return (self[k] for k in range(len(self)))

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @classmethod
    def of(cls, fingerprints: Sequence[Fingerprint]) -> FingerprintTable:
        """The table of ``fingerprints`` in their order (ids are their positions)."""
        if isinstance(fingerprints, FingerprintTable):
            return fingerprints
        lengths = np.array([len(fp) for fp in fingerprints], dtype=np.int64)

        def joined(parts: list[np.ndarray], empty: np.ndarray) -> np.ndarray:
            return np.concatenate([empty, *parts])

        return cls(np.arange(len(fingerprints)).astype(str), np.r_[0, np.cumsum(lengths)].astype(np.int64),
                   joined([fp.times for fp in fingerprints], np.zeros(0)),
                   joined([fp.hashes for fp in fingerprints], np.zeros((0, len(HASH_COLUMNS)), np.uint64)),
                   joined([fp.detail for fp in fingerprints], np.zeros(0, np.float32)),
                   np.array([fp.duration for fp in fingerprints], dtype=np.float64))


FRAME_COLUMNS = ("clip_id", "t", "duration", "detail", *HASH_COLUMNS)
REQUIRED_COLUMNS = frozenset({"clip_id", "t", "duration", *HASH_COLUMNS})


def _local_clips(ids: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(code per row, names ascending) of one table's clip ids read as str; the conversion once per distinct id
    (a categorical column: its categories), not per row."""
    codes, uniques = pd.factorize(ids, use_na_sentinel=False)
    renumbered, names = pd.factorize(np.asarray(uniques).astype(str), sort=True)
    return renumbered[codes].astype(np.int32), np.asarray(names, dtype=object)


def fingerprint_table(tables: Sequence[pd.DataFrame]) -> tuple[FingerprintTable, pd.DataFrame]:
    """The fingerprints of the rows of ``tables`` (``Fingerprint.to_frame`` rows of many clips, in any order; a
    table without the detail column, written before detail was measured, reads as flat frames), and the other
    columns of each clip's first row (what ``drop_duplicates("clip_id")`` keeps), indexed by clip_id in table order.

    Two passes, one table at a time (``PartitionTables`` reads a partition when it is asked for): the clip ids and
    times of every table give each row its place (no sort where the rows are already grouped by clip in id order
    and time order within each clip, one stable sort of all rows otherwise); then every table's frames are
    copied straight to their places. Only the flat arrays and one table are ever held, never a concatenation or
    a second copy. An empty table may lack the frame columns (a class with nothing to fingerprint).
    """
    tables = tables if isinstance(tables, PartitionTables) else PartitionTables.of(tables)
    kept, ids, codes, times, firsts = [], [], [], [], []  # per non-empty table: (number, rows), ...
    for k in range(len(tables)):
        rows = tables.columns(k, ("clip_id", "t"))
        if not len(rows):
            continue
        kept.append((k, len(rows)))
        if "t" not in rows.columns:
            _check_columns(k, tables[k])
        local, names = _local_clips(rows["clip_id"])
        firsts.append(np.unique(local, return_index=True)[1])  # each local clip's first row, for its columns
        codes.append(local)
        ids.append(names)
        times.append(rows["t"].to_numpy(np.float64))
    renumbered, names = pd.factorize(np.concatenate([np.zeros(0, object), *ids]), sort=True)
    names = np.asarray(names, dtype=object)
    bounds = np.cumsum([0, *(len(part) for part in ids)])
    codes = np.concatenate([np.zeros(0, np.int32), *(renumbered[lo:lo + len(part)][local].astype(np.int32)
                                                     for lo, part, local in zip(bounds, ids, codes))])
    times = np.concatenate([np.zeros(0), *times])
    n = len(codes)
    grouped = bool(np.all((codes[1:] > codes[:-1]) | (codes[1:] == codes[:-1]) & (times[1:] >= times[:-1])))
    places = np.arange(n)
    if not grouped:  # the input order breaks ties: rows of a clip spanning tables keep their tables' order
        order = np.lexsort((times, codes))
        times = times[order]
        places[order] = np.arange(n)
        del order
    sorted_codes = np.empty_like(codes)
    sorted_codes[places] = codes
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]]) if n else np.zeros(0, np.int64)
    del sorted_codes
    hashes = np.empty((n, len(HASH_COLUMNS)), np.uint64)
    detail = np.zeros(n, np.float32)
    durations = np.empty(len(names), np.float64)
    clip_rows, at = [], 0
    for (k, size), first_rows in zip(kept, firsts):
        rows = tables[k]
        _check_columns(k, rows)
        if len(rows) != size:
            raise RuntimeError(f"fingerprint table {k} ({tables.names[k]}) changed while read: {size} then "
                               f"{len(rows)} rows")
        place, clip = places[at:at + size], codes[at:at + size]
        for column, name in enumerate(HASH_COLUMNS):  # column by column: exact uint64, never through a float frame
            hashes[place, column] = rows[name].to_numpy(np.uint64)
        if "detail" in rows.columns:
            detail[place] = rows["detail"].to_numpy(np.float32)
        first = place == starts[clip]  # a clip's duration is its first row's
        durations[clip[first]] = rows["duration"].to_numpy(np.float64)[first]
        clip_rows.append(rows.iloc[first_rows].drop(columns=[c for c in FRAME_COLUMNS if c in rows.columns]))
        at += size
    del places, codes
    table = FingerprintTable(names, np.r_[starts, n].astype(np.int64), times, hashes, detail, durations)
    # each clip's columns from the first table (in the given order) that holds it
    first = np.unique(renumbered, return_index=True)[1]
    clips = pd.concat(clip_rows, ignore_index=True).iloc[first] if clip_rows else pd.DataFrame()
    clips = clips.astype({name: object for name, dtype in clips.dtypes.items() if isinstance(dtype, pd.CategoricalDtype)})
    clips.index = pd.Index(names, name="clip_id")
    return table, clips


def _check_columns(k: int, rows: pd.DataFrame) -> None:
    missing = REQUIRED_COLUMNS - set(rows.columns)
    if missing:
        raise ValueError(f"fingerprint table {k} lacks columns {sorted(missing)}")


def fingerprints_from_frame(rows: pd.DataFrame) -> dict[str, Fingerprint]:
    """Inverse of ``Fingerprint.to_frame`` over many clips, in clip_id order (see ``fingerprint_table``)."""
    table, _ = fingerprint_table([rows])
    return dict(zip(table.ids.tolist(), table))
