"""Many clips' fingerprints in flat arrays, read from the per-frame tables the fingerprint assets store.

The stored tables have one row per hashed frame and repeat the clip's columns (id, class, path, ...) on every
row. At a million clips that is 20M rows: a pandas group or a ``Fingerprint`` object per clip, or a Python
look-up per clip and column, costs minutes and gigabytes. Here the clip ids are factorized once, the frames
keep one (n, 11) uint64 matrix in clip order, and the clip columns are taken once per clip.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kinetics_assets.dedup.fingerprint import HASH_COLUMNS, Fingerprint


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


@dataclass
class _Part:
    """One table's rows as arrays, its clip ids factorized locally (codes in order of first appearance)."""

    ids: np.ndarray         # (local clips,) str
    codes: np.ndarray       # (rows,) int32 into ids
    times: np.ndarray
    hashes: np.ndarray
    detail: np.ndarray
    durations: np.ndarray
    clips: pd.DataFrame     # the non-frame columns of each local clip's first row

    @classmethod
    def of(cls, rows: pd.DataFrame) -> _Part:
        codes, uniques = pd.factorize(rows["clip_id"].to_numpy(object), use_na_sentinel=False)
        first = np.unique(codes, return_index=True)[1]
        hashes = np.empty((len(rows), len(HASH_COLUMNS)), np.uint64)
        for k, name in enumerate(HASH_COLUMNS):  # column by column: exact uint64, never through a float frame
            hashes[:, k] = rows[name].to_numpy(np.uint64)
        detail = rows["detail"].to_numpy(np.float32) if "detail" in rows.columns else np.zeros(len(rows), np.float32)
        return cls(np.asarray(uniques).astype(str), codes.astype(np.int32), rows["t"].to_numpy(np.float64), hashes,
                   detail, rows["duration"].to_numpy(np.float64),
                   rows.iloc[first].drop(columns=[c for c in FRAME_COLUMNS if c in rows.columns]))


def _joined(parts: list[_Part], name: str, empty: np.ndarray, renumber: list[np.ndarray] | None = None,
            into: np.ndarray | None = None) -> np.ndarray:
    """The parts' ``name`` arrays one after the other (row r at ``into[r]`` when given), each part's array released
    once copied, so the whole is never held twice; with ``renumber``, each part's local clip codes renumbered
    through its global ones."""
    n = sum(len(getattr(part, name)) for part in parts)
    out = np.empty((n, *empty.shape[1:]), empty.dtype)
    at = 0
    for k, part in enumerate(parts):
        values = getattr(part, name)
        values = values if renumber is None else renumber[k][values]
        out[slice(at, at + len(values)) if into is None else into[at:at + len(values)]] = values
        at += len(values)
        setattr(part, name, None)
    return out


def fingerprint_table(frames: Iterable[pd.DataFrame]) -> tuple[FingerprintTable, pd.DataFrame]:
    """The fingerprints of the rows of ``frames`` (``Fingerprint.to_frame`` rows of many clips, in any order; a
    table without the detail column, written before detail was measured, reads as flat frames), and the other
    columns of each clip's first row (what ``drop_duplicates("clip_id")`` keeps), indexed by clip_id in table order.

    The tables are taken one at a time (``PartitionTables`` reads each partition only when it is its turn) and
    kept as arrays, then joined: one table's frame at a time, never their concatenation. One sort of the whole
    table, not a pandas group per clip; none where the rows are already grouped by clip in id order and time
    order within each clip (as the fingerprint assets write them). An empty table may lack the frame columns
    (a class with nothing to fingerprint).
    """
    parts = []
    for k, rows in enumerate(frames):
        if not len(rows):
            continue
        missing = REQUIRED_COLUMNS - set(rows.columns)
        if missing:
            raise ValueError(f"fingerprint table {k} lacks columns {sorted(missing)}")
        parts.append(_Part.of(rows))
    local_ids = np.concatenate([np.zeros(0, str), *(part.ids for part in parts)])
    renumbered, names = pd.factorize(local_ids, sort=True)
    names = np.asarray(names, dtype=object)
    bounds = np.cumsum([0, *(len(part.ids) for part in parts)])
    global_codes = [renumbered[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:])]
    clip_rows = [part.clips for part in parts]
    codes = _joined(parts, "codes", np.zeros(0, np.int64), global_codes)
    times = _joined(parts, "times", np.zeros(0))
    n = len(codes)
    grouped = bool(np.all((codes[1:] > codes[:-1]) | (codes[1:] == codes[:-1]) & (times[1:] >= times[:-1])))
    into = None
    if not grouped:  # each row is copied straight to its sorted place: no second copy of the frames
        order = np.lexsort((times, codes))
        codes, times = codes[order], times[order]
        into = np.empty(n, np.int64)
        into[order] = np.arange(n)
        del order
    hashes = _joined(parts, "hashes", np.zeros((0, len(HASH_COLUMNS)), np.uint64), into=into)
    detail = _joined(parts, "detail", np.zeros(0, np.float32), into=into)
    durations = _joined(parts, "durations", np.zeros(0), into=into)
    del into
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if n else np.zeros(0, np.int64)
    table = FingerprintTable(names, np.r_[starts, n].astype(np.int64), times, hashes, detail, durations[starts])
    # each clip's columns from its first table: the first of its local ids in table order
    first = np.unique(renumbered, return_index=True)[1]
    clips = pd.concat(clip_rows, ignore_index=True).iloc[first] if clip_rows else pd.DataFrame()
    clips.index = pd.Index(names, name="clip_id")
    return table, clips


def fingerprints_from_frame(rows: pd.DataFrame) -> dict[str, Fingerprint]:
    """Inverse of ``Fingerprint.to_frame`` over many clips, in clip_id order (see ``fingerprint_table``)."""
    table, _ = fingerprint_table([rows])
    return dict(zip(table.ids.tolist(), table))
