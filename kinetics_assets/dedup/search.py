"""Candidate clip pairs from a bit-sampling LSH over 64-bit frame hashes: never all pairs.

Each of ``tables`` hash tables keys a hash by ``bits`` randomly sampled bit positions (a mask; the masked value
is folded to 32 bits by a multiply-shift). Two hashes at Hamming distance d share a key in one table with
probability C(64-d, bits) / C(64, bits), unrelated ones with ~2**-bits. A single frame pair is therefore found
only now and then, but a duplicate clip pair has many frame pairs, so the pair of clips is found with high
probability; ``match`` then confirms or rejects it with every frame.

The index holds every frame's whole-frame and mirrored hashes; queries are the views (whole frame and crop
windows) of every ``query_stride``-th frame. Cost per table: one sort of the index and of each query chunk plus a
binary search, i.e. O(n log n) in the number of clips.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kinetics_assets.dedup.fingerprint import Fingerprint

_FOLD = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant for the multiply-shift fold to 32 bits


@dataclass(frozen=True)
class SearchParams:
    tables: int = 12
    bits: int = 32
    query_stride: int = 2       # views of every 2nd sampled frame (1 per second at 2 fps) are looked up
    max_bucket: int = 512       # a key shared by more index entries is uninformative (flat or stock footage)
    seed: int = 0
    chunk: int = 4_000_000      # queries sorted and searched at a time (bounds memory)

    def __post_init__(self):
        if not 1 <= self.bits <= 63 or self.tables < 1 or self.query_stride < 1 or self.max_bucket < 2:
            raise ValueError(f"invalid search parameters: {self}")


def table_masks(params: SearchParams) -> np.ndarray:
    """One 64-bit mask with ``bits`` bits set per table, fixed by the seed."""
    rng = np.random.default_rng(params.seed)
    masks = np.zeros(params.tables, dtype=np.uint64)
    for t in range(params.tables):
        for bit in rng.choice(64, size=params.bits, replace=False):
            masks[t] |= np.uint64(1) << np.uint64(bit)
    return masks


def _keys(hashes: np.ndarray, mask: np.uint64) -> np.ndarray:
    return (((hashes & mask) * _FOLD) >> np.uint64(32)).astype(np.uint32)


def _expand(starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner, position) for every position in the ranges [start, start + count) of each owner."""
    owner = np.repeat(np.arange(len(counts)), counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    return owner, np.repeat(starts, counts) + np.arange(int(counts.sum())) - first


def _pair_codes(a: np.ndarray, b: np.ndarray, n_clips: int) -> np.ndarray:
    lo, hi = np.minimum(a, b).astype(np.int64), np.maximum(a, b).astype(np.int64)
    keep = lo != hi
    return np.unique(lo[keep] * n_clips + hi[keep])


def candidate_pairs_from_arrays(index_hashes: np.ndarray, index_clips: np.ndarray, query_hashes: np.ndarray,
                                query_clips: np.ndarray, n_clips: int, params: SearchParams = SearchParams()
                                ) -> np.ndarray:
    """Unique clip pairs (m, 2), lo < hi, sorted, whose query and index hashes share a key in some table."""
    index_hashes = np.ascontiguousarray(index_hashes, dtype=np.uint64)
    query_hashes = np.ascontiguousarray(query_hashes, dtype=np.uint64)
    index_clips = np.asarray(index_clips, dtype=np.int32)
    query_clips = np.asarray(query_clips, dtype=np.int32)
    if index_hashes.shape != index_clips.shape or query_hashes.shape != query_clips.shape:
        raise ValueError("hashes and clip numbers must be 1-d arrays of equal length")
    found = [np.zeros(0, np.int64)]
    for mask in table_masks(params):
        keys = _keys(index_hashes, mask)
        order = np.argsort(keys)
        sorted_keys, sorted_clips = keys[order], index_clips[order]
        del keys, order
        for lo in range(0, len(query_hashes), params.chunk):
            q_keys = _keys(query_hashes[lo:lo + params.chunk], mask)
            q_order = np.argsort(q_keys)
            q_keys, q_clips = q_keys[q_order], query_clips[lo:lo + params.chunk][q_order]
            starts = np.searchsorted(sorted_keys, q_keys, side="left")
            counts = np.searchsorted(sorted_keys, q_keys, side="right") - starts
            counts[counts > params.max_bucket] = 0
            owner, position = _expand(starts, counts)
            found.append(_pair_codes(q_clips[owner], sorted_clips[position], n_clips))
        found = [np.unique(np.concatenate(found))]
    codes = found[0]
    return np.stack([codes // n_clips, codes % n_clips], axis=1)


def index_and_queries(fingerprints: Sequence[Fingerprint], query_stride: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(index hashes, their clip numbers, query hashes, their clip numbers) of clips numbered by position."""
    # Static footage repeats a hash many times within a clip; one copy per clip is enough to find the clip.
    index = [np.unique(fp.hashes[:, :2]) for fp in fingerprints]
    queries = [np.unique(fp.view_hashes[::query_stride]) for fp in fingerprints]

    def owners(parts: list[np.ndarray]) -> np.ndarray:
        return np.repeat(np.arange(len(parts), dtype=np.int32), [len(p) for p in parts])

    empty = np.zeros(0, np.uint64)
    return (np.concatenate([empty, *index]), owners(index), np.concatenate([empty, *queries]), owners(queries))


def candidate_pairs(fingerprints: Sequence[Fingerprint], params: SearchParams = SearchParams()) -> np.ndarray:
    """Clip pairs (positions in ``fingerprints``, lo < hi) worth confirming with ``match``."""
    index_hashes, index_clips, query_hashes, query_clips = index_and_queries(fingerprints, params.query_stride)
    return candidate_pairs_from_arrays(index_hashes, index_clips, query_hashes, query_clips,
                                       max(len(fingerprints), 1), params)
