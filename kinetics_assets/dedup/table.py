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


def _clip_codes(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(code per row, names ascending) of ids read as str: ``pd.factorize(ids.astype(str), sort=True)``, with the
    string conversion done once per distinct id instead of per row."""
    codes, uniques = pd.factorize(ids, use_na_sentinel=False)
    renumbered, names = pd.factorize(np.asarray(uniques).astype(str), sort=True)
    return renumbered[codes], np.asarray(names, dtype=object)


FRAME_COLUMNS = ("clip_id", "t", "duration", "detail", *HASH_COLUMNS)


def fingerprint_table(frames: Sequence[pd.DataFrame]) -> tuple[FingerprintTable, pd.DataFrame]:
    """The fingerprints of the rows of ``frames`` (``Fingerprint.to_frame`` rows of many clips, in any order; a
    table without the detail column, written before detail was measured, reads as flat frames), and the other
    columns of each clip's first row (what ``drop_duplicates("clip_id")`` keeps), indexed by clip_id in table order.

    One sort of the whole table, not a pandas group per clip; none where the rows are already grouped by clip in
    id order and time order within each clip (as the fingerprint assets write them).
    """
    required = {"clip_id", "t", "duration", *HASH_COLUMNS}
    for k, rows in enumerate(frames):
        missing = required - set(rows.columns)
        if missing and (len(rows) or not any(required <= set(other.columns) for other in frames)):
            raise ValueError(f"fingerprint table {k} lacks columns {sorted(missing)}")
    frames = [rows for rows in frames if len(rows)]  # an empty table may lack the frame columns
    sizes = np.array([len(rows) for rows in frames], dtype=np.int64)
    n = int(sizes.sum())

    def column(name: str, dtype) -> np.ndarray:
        return np.concatenate([np.zeros(0, dtype), *(rows[name].to_numpy(dtype) for rows in frames)])

    codes, names = _clip_codes(column("clip_id", object))
    times = column("t", np.float64)
    grouped = bool(np.all((codes[1:] > codes[:-1]) | (codes[1:] == codes[:-1]) & (times[1:] >= times[:-1])))
    hashes = np.empty((n, len(HASH_COLUMNS)), np.uint64)
    for k, name in enumerate(HASH_COLUMNS):
        hashes[:, k] = column(name, np.uint64)
    detail = np.concatenate([np.zeros(0, np.float32), *(
        rows["detail"].to_numpy(np.float32) if "detail" in rows.columns else np.zeros(len(rows), np.float32)
        for rows in frames)])
    durations = column("duration", np.float64)
    if grouped:
        first = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if n else np.zeros(0, np.int64)
        starts = first
    else:
        first = np.unique(codes, return_index=True)[1]  # first occurrence in the input, per clip in id order
        order = np.lexsort((times, codes))
        codes, times, hashes, detail, durations = codes[order], times[order], hashes[order], detail[order], durations[order]
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    table = FingerprintTable(names, np.r_[starts, n].astype(np.int64), times, hashes, detail, durations[starts])
    return table, _clip_rows(frames, sizes, first, names)


def _clip_rows(frames: Sequence[pd.DataFrame], sizes: np.ndarray, first: np.ndarray, names: np.ndarray
               ) -> pd.DataFrame:
    """The non-frame columns at rows ``first`` (numbered across ``frames``), indexed by ``names``."""
    bounds = np.r_[0, np.cumsum(sizes)]
    part = np.searchsorted(bounds, first, side="right") - 1
    pieces, positions = [], []
    for k, rows in enumerate(frames):
        mine = np.flatnonzero(part == k)
        if len(mine):
            pieces.append(rows.iloc[first[mine] - bounds[k]].drop(columns=[c for c in FRAME_COLUMNS if c in rows.columns]))
            positions.append(mine)
    if not pieces:
        return pd.DataFrame(index=pd.Index(names, name="clip_id"))
    clips = pd.concat(pieces, ignore_index=True)
    clips = clips.iloc[np.argsort(np.concatenate(positions))]
    clips.index = pd.Index(names, name="clip_id")
    return clips


def fingerprints_from_frame(rows: pd.DataFrame) -> dict[str, Fingerprint]:
    """Inverse of ``Fingerprint.to_frame`` over many clips, in clip_id order (see ``fingerprint_table``)."""
    table, _ = fingerprint_table([rows])
    return dict(zip(table.ids.tolist(), table))
