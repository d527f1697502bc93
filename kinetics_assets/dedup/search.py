"""Candidate clip pairs from a bit-sampling LSH over 64-bit frame hashes: never all pairs.

Each of ``tables`` hash tables keys a hash by ``bits`` randomly sampled bit positions (a mask; the masked value
is folded to 32 bits by a multiply-shift). Two hashes at Hamming distance d share a key in one table with
probability C(64-d, bits) / C(64, bits), unrelated ones with ~2**-bits. A single frame pair is therefore found
only now and then, but a duplicate clip pair has many frame pairs, so the pair of clips is found with high
probability; ``match`` then confirms or rejects it with every frame.

The index holds every frame's whole-frame and mirrored hashes; queries are the views (whole frame and crop
windows) of every ``query_stride``-th frame. Cost per table: a counting sort of the index and one directory
look-up per query (``kernels.HashTable``), i.e. O(n) in the number of clips. A collision whose two hashes are
more than ``radius`` bits apart is dropped there and then (random hashes are ~32 bits apart), so it never costs
a confirmation.

Near-still footage gives the first tier a single frame pair to find instead of dozens, too few for long keys at
8-14 bits. Every run of near-identical frames (a still shot) is therefore also reduced to one consensus hash per
view (the bitwise majority of its frames, which also cancels frame noise) and searched in a second tier with
shorter keys and more tables: still shots are few, so its index is small and its buckets stay nearly empty.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from kinetics_assets.dedup.fingerprint import HASH_COLUMNS, VIEW_COLUMNS, Fingerprint
from kinetics_assets.dedup.table import FingerprintTable


@dataclass(frozen=True)
class SearchParams:
    tables: int = 16
    bits: int = 28
    query_stride: int = 2       # views of every 2nd sampled frame (1 per second at 2 fps) are looked up
    max_bucket: int = 512       # a key shared by more index entries is uninformative (flat or stock footage)
    seed: int = 0
    chunk: int = 2_000_000      # queries made and probed at a time by one thread (bounds memory)
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
    workers: int = 2            # threads probing a table (one per core)

    def __post_init__(self):
        if (not 1 <= self.bits <= 63 or not 1 <= self.still_bits <= 63 or self.tables < 1 or self.still_tables < 0
                or self.query_stride < 1 or self.max_bucket < 2 or not 0 <= self.radius <= 64
                or not 0 <= self.still_radius <= 64 or self.still_frames < 2 or self.workers < 1):
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


QueryChunk = Callable[[], tuple[np.ndarray, np.ndarray]]  # makes one chunk of queries: (hashes, clip numbers)


def _search(index_hashes: np.ndarray, index_clips: np.ndarray, query_chunks: Callable[[], Iterable[QueryChunk]],
            n_clips: int, params: SearchParams) -> np.ndarray:
    """Unique clip pairs (m, 2), lo < hi, sorted, whose query and index hashes share a key in some table; the
    queries come in chunks, made again for every table. One table is held at a time (at a million clips each is
    ~0.6 GB); ``params.workers`` threads each make a chunk and probe the table with it (the compiled code releases
    the GIL)."""
    from kinetics_assets.dedup.kernels import HashTable  # Numba: imported where it runs (see kernels)

    found = [np.zeros(0, np.int64)]
    with ThreadPoolExecutor(max_workers=params.workers) as pool:
        for mask in table_masks(params):
            table = HashTable.build(index_hashes, index_clips, mask, params.max_bucket)
            found += pool.map(lambda make: table.near(*make(), params.radius, n_clips), query_chunks())
            found = [np.unique(np.concatenate(found))]
            table = None  # freed before the next one is built
    codes = found[0]
    return np.stack([codes // n_clips, codes % n_clips], axis=1)


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

    def chunks() -> Iterator[QueryChunk]:
        for lo in range(0, len(query_hashes), params.chunk):
            yield lambda lo=lo: (query_hashes[lo:lo + params.chunk], query_clips[lo:lo + params.chunk])

    return _search(index_hashes, index_clips, chunks, n_clips, params)


def _distinct_per_clip(values: np.ndarray, lengths: np.ndarray, first: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(values, clip numbers from ``first``) of each clip's distinct values; ``values`` holds the clips' values one
    after the other, ``lengths`` of them per clip. Clips of one length are sorted together, a row per clip."""
    offsets = np.r_[0, np.cumsum(lengths)]
    kept, owners = [np.zeros(0, np.uint64)], [np.zeros(0, np.int32)]
    for length in np.unique(lengths[lengths > 0]).tolist():
        clips = np.flatnonzero(lengths == length)
        rows = np.sort(values[offsets[clips][:, None] + np.arange(length)], axis=1)
        distinct = np.ones(rows.shape, bool)
        distinct[:, 1:] = rows[:, 1:] != rows[:, :-1]
        kept.append(rows[distinct])
        owners.append(np.repeat(first + clips, distinct.sum(axis=1)).astype(np.int32))
    return np.concatenate(kept), np.concatenate(owners)


def _moving_index(table: FingerprintTable, block: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
    """Every clip's distinct whole-frame and mirrored hashes (static footage repeats a hash many times within a
    clip; one copy per clip is enough to find the clip, and the bucket sizes count clips, not repeats)."""
    parts = [_distinct_per_clip(table.hashes[table.offsets[lo]:table.offsets[min(lo + block, len(table))], :2]
                                .reshape(-1), 2 * table.lengths[lo:lo + block], lo)
             for lo in range(0, len(table), block)]
    hashes, clips = zip(*parts) if parts else ((np.zeros(0, np.uint64),), (np.zeros(0, np.int32),))
    return np.concatenate(hashes), np.concatenate(clips)


def _moving_queries(table: FingerprintTable, query_stride: int, clips_per_chunk: int) -> Iterator[QueryChunk]:
    """The views of every ``query_stride``-th frame of each clip, ``clips_per_chunk`` clips at a time. A view equal
    to the same view of the clip's queried frame before is left out (a still shot repeats its hashes; finding the
    same pair twice adds nothing)."""
    from kinetics_assets.dedup.kernels import views_of_queried_frames

    views = np.asarray(VIEW_COLUMNS, np.int64)
    for lo in range(0, len(table), clips_per_chunk):
        yield functools.partial(views_of_queried_frames, table.hashes, table.offsets, views, lo,
                                min(lo + clips_per_chunk, len(table)), query_stride)


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
    """(index hashes, their clip numbers, query hashes, their clip numbers) of the second tier: one consensus of
    every still shot (index: whole frame and mirrored; queries: whole frame and crop windows); clips are taken
    ``block`` at a time (bounds memory)."""
    table = FingerprintTable.of(fingerprints)
    agreed, owners = [np.zeros((0, len(HASH_COLUMNS)), np.uint64)], [np.zeros(0, np.int32)]
    for lo in range(0, len(table), block):
        hi = min(lo + block, len(table))
        lengths = table.lengths[lo:hi]
        if not lengths.sum():
            continue
        hashes = table.hashes[table.offsets[lo]:table.offsets[hi]]
        first = np.zeros(len(hashes), bool)
        first[(table.offsets[lo:hi] - table.offsets[lo])[lengths > 0]] = True
        starts, ends = still_shots(hashes[:, 0], first, params.still_frames, params.still_apart)
        agreed.append(consensus(hashes, starts, ends))
        owners.append((lo + np.repeat(np.arange(hi - lo), lengths)[starts]).astype(np.int32))
    agreed, owners = np.concatenate(agreed), np.concatenate(owners)
    views = agreed[:, VIEW_COLUMNS]
    return (agreed[:, :2].reshape(-1), np.repeat(owners, 2), views.reshape(-1), np.repeat(owners, views.shape[1]))


def candidate_pairs(fingerprints: Sequence[Fingerprint], params: SearchParams = SearchParams()) -> np.ndarray:
    """Clip pairs (positions in ``fingerprints``, lo < hi) worth confirming with ``match``: either tier's."""
    table = FingerprintTable.of(fingerprints)
    n_clips = max(len(table), 1)
    index_hashes, index_clips = _moving_index(table)
    clips_per_chunk = max(1, params.chunk // max(1, len(VIEW_COLUMNS) * -(-int(table.lengths.max(initial=1))
                                                                          // params.query_stride)))
    moving = _search(index_hashes, index_clips, lambda: _moving_queries(table, params.query_stride, clips_per_chunk),
                     n_clips, params)
    if params.still_tables == 0:
        return moving
    still = candidate_pairs_from_arrays(*still_index_and_queries(table, params), n_clips, params.still_tier())
    return np.unique(np.concatenate([moving, still]), axis=0)
