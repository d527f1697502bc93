"""Candidate clip pairs from a bit-sampling LSH over 64-bit frame hashes: never all pairs.

Each of ``tables`` hash tables keys a hash by ``bits`` randomly sampled bit positions (a mask; the masked value
is folded to 32 bits by a multiply-shift). Two hashes at Hamming distance d share a key in one table with
probability C(64-d, bits) / C(64, bits), unrelated ones with ~2**-bits. A single frame pair is therefore found
only now and then, but a duplicate clip pair has many frame pairs, so the pair of clips is found with high
probability; ``match`` then confirms or rejects it with every frame.

The index holds every frame's whole-frame and mirrored hashes; queries are the views (whole frame and crop
windows) of every ``query_stride``-th frame. Cost per table: one sort of the index and of each query chunk plus a
binary search, i.e. O(n log n) in the number of clips. A collision whose two hashes are more than ``radius`` bits
apart is dropped there and then (random hashes are ~32 bits apart), so it never costs a confirmation.

Near-still footage gives the first tier a single frame pair to find instead of dozens, too few for long keys at
8-14 bits. Every run of near-identical frames (a still shot) is therefore also reduced to one consensus hash per
view (the bitwise majority of its frames, which also cancels frame noise) and searched in a second tier with
shorter keys and more tables: still shots are few, so its index is small and its buckets stay nearly empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from kinetics_assets.dedup.fingerprint import HASH_COLUMNS, Fingerprint

_FOLD = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant for the multiply-shift fold to 32 bits


@dataclass(frozen=True)
class SearchParams:
    tables: int = 16
    bits: int = 28
    query_stride: int = 2       # views of every 2nd sampled frame (1 per second at 2 fps) are looked up
    max_bucket: int = 512       # a key shared by more index entries is uninformative (flat or stock footage)
    seed: int = 0
    chunk: int = 4_000_000      # queries sorted and searched at a time (bounds memory)
    # Collisions of hashes further apart than this are no candidates: two random hashes that share a 28-bit key
    # are within 10 of their other 36 bits with p = 0.006 (within 14: 0.12, i.e. 0.3M chance candidates at 100k
    # clips); a moving copy has many frame pairs, some closer (at 9 the planted set loses a 96x72 copy of a tripod
    # shot with action). Still shots (16-bit keys) are searched to 14.
    radius: int = 10
    still_radius: int = 14
    still_tables: int = 64      # second tier: consensus hashes of still shots
    still_bits: int = 16
    still_frames: int = 4       # consecutive sampled frames (2 s at 2 fps) ...
    still_apart: int = 6        # ... each within this many bits of the one before make a still shot

    def __post_init__(self):
        if (not 1 <= self.bits <= 63 or not 1 <= self.still_bits <= 63 or self.tables < 1 or self.still_tables < 0
                or self.query_stride < 1 or self.max_bucket < 2 or not 0 <= self.radius <= 64
                or not 0 <= self.still_radius <= 64 or self.still_frames < 2):
            raise ValueError(f"invalid search parameters: {self}")

    def still_tier(self) -> SearchParams:
        """The parameters the second tier (consensus hashes of still shots) is searched with."""
        return replace(self, tables=self.still_tables, bits=self.still_bits, seed=self.seed + 1,
                       radius=self.still_radius)


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
        sorted_keys, sorted_clips, sorted_hashes = keys[order], index_clips[order], index_hashes[order]
        del keys, order
        for lo in range(0, len(query_hashes), params.chunk):
            q_keys = _keys(query_hashes[lo:lo + params.chunk], mask)
            q_order = np.argsort(q_keys)
            q_keys, q_clips = q_keys[q_order], query_clips[lo:lo + params.chunk][q_order]
            q_hashes = query_hashes[lo:lo + params.chunk][q_order]
            starts = np.searchsorted(sorted_keys, q_keys, side="left")
            counts = np.searchsorted(sorted_keys, q_keys, side="right") - starts
            counts[counts > params.max_bucket] = 0
            owner, position = _expand(starts, counts)
            near = np.bitwise_count(q_hashes[owner] ^ sorted_hashes[position]) <= params.radius
            found.append(_pair_codes(q_clips[owner[near]], sorted_clips[position[near]], n_clips))
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


def still_shots(frame_hashes: np.ndarray, first_of_clip: np.ndarray, min_frames: int, max_apart: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of every run of >= ``min_frames`` frames, each within ``max_apart`` bits of the one before
    and of the same clip (``first_of_clip``: True where a clip's frames begin)."""
    steady = np.zeros(len(frame_hashes), bool)
    steady[1:] = np.bitwise_count(frame_hashes[1:] ^ frame_hashes[:-1]) <= max_apart
    steady &= ~first_of_clip
    starts = np.flatnonzero(~steady)
    ends = np.r_[starts[1:], len(frame_hashes)]
    long = ends - starts >= min_frames
    return starts[long], ends[long]


def consensus(hashes: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Bitwise majority of the rows [start, end) of (n, k) uint64 hashes, per run: (runs, k) uint64."""
    rows = np.concatenate([np.arange(a, b) for a, b in zip(starts.tolist(), ends.tolist())] or [np.zeros(0, int)])
    bits = np.unpackbits(hashes[rows].astype(">u8").view(np.uint8).reshape(len(rows), hashes.shape[1], 8), axis=-1)
    offsets = np.r_[0, np.cumsum(ends - starts)[:-1]].astype(np.int64)
    ones = np.add.reduceat(bits, offsets, axis=0, dtype=np.int32) if len(rows) else bits[:0].astype(np.int32)
    majority = (2 * ones > (ends - starts)[:, None, None]).astype(np.uint8)
    return np.packbits(majority, axis=-1).view(">u8")[..., 0].astype(np.uint64)


def still_index_and_queries(fingerprints: Sequence[Fingerprint], params: SearchParams, block: int = 20_000
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Like ``index_and_queries`` over one consensus of every still shot (index: whole frame and mirrored;
    queries: whole frame and crop windows); clips are taken ``block`` at a time (bounds memory)."""
    agreed, owners = [np.zeros((0, len(HASH_COLUMNS)), np.uint64)], [np.zeros(0, np.int32)]
    for lo in range(0, len(fingerprints), block):
        part = fingerprints[lo:lo + block]
        lengths = np.array([len(fp) for fp in part])
        if not lengths.sum():
            continue
        hashes = np.concatenate([fp.hashes for fp in part])
        first = np.zeros(len(hashes), bool)
        first[np.r_[0, np.cumsum(lengths)[:-1]][lengths > 0]] = True
        starts, ends = still_shots(hashes[:, 0], first, params.still_frames, params.still_apart)
        agreed.append(consensus(hashes, starts, ends))
        owners.append((lo + np.repeat(np.arange(len(part)), lengths)[starts]).astype(np.int32))
    agreed, owners = np.concatenate(agreed), np.concatenate(owners)
    views = agreed[:, [0, *range(2, len(HASH_COLUMNS))]]
    return (agreed[:, :2].reshape(-1), np.repeat(owners, 2), views.reshape(-1), np.repeat(owners, views.shape[1]))


def candidate_pairs(fingerprints: Sequence[Fingerprint], params: SearchParams = SearchParams()) -> np.ndarray:
    """Clip pairs (positions in ``fingerprints``, lo < hi) worth confirming with ``match``: either tier's."""
    n_clips = max(len(fingerprints), 1)
    index_hashes, index_clips, query_hashes, query_clips = index_and_queries(fingerprints, params.query_stride)
    moving = candidate_pairs_from_arrays(index_hashes, index_clips, query_hashes, query_clips, n_clips, params)
    if params.still_tables == 0:
        return moving
    still = candidate_pairs_from_arrays(*still_index_and_queries(fingerprints, params), n_clips, params.still_tier())
    return np.unique(np.concatenate([moving, still]), axis=0)
