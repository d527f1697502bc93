"""The dedup's compiled loops (Numba): the LSH hash table, the search's queries, the batched rejection of candidates.

Imported only where a search or a confirmation runs (``search._search``, ``match.worth_voting``): importing Numba
costs about a second, which every process that loads the Dagster definitions would otherwise pay.

At a million clips the moving tier probes 16 tables with ~100M query hashes each: 1.6G look-ups. In numpy every
look-up is several passes over temporaries (keys, directory slots, gathers, expansions), which made the search
most of ``duplicate_clusters``' time. Here a table is a counting sort of the index entries by the top bits of
their keys (a directory of cells, each holding the entries whose keys start with those bits, sorted by key, keys
held by more than ``max_bucket`` entries left out), and a look-up is one directory read and a scan of its cell
(about one entry). The kernels release the GIL, so several threads run them at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from numba import types
from numba.extending import intrinsic

FOLD = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant for the multiply-shift fold to 32 bits


@intrinsic
def popcount(typingctx, value):
    """The CPU's popcount of a uint64 (LLVM ``ctpop``)."""
    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])
    return types.uint64(types.uint64), codegen


@numba.njit(cache=True, nogil=True, inline="always")
def _key(value, mask):
    return np.uint32(((value & mask) * FOLD) >> np.uint64(32))


@numba.njit(cache=True, nogil=True)
def _build(hashes, clips, mask, shift, max_bucket):
    """(directory, hashes, clips) of the table: cell c (top key bits c) holds entries directory[c]:directory[c + 1],
    ascending by key, a key shared by more than ``max_bucket`` entries left out. An entry is its hash (its key is
    recomputed from it: one memory read per probed entry) and its clip number."""
    n = len(hashes)
    cells = np.int64(1) << np.int64(32 - shift)
    directory = np.zeros(cells + 1, np.int32)
    for i in range(n):
        directory[(_key(hashes[i], mask) >> shift) + 1] += 1
    for c in range(cells):
        directory[c + 1] += directory[c]
    table_hashes = np.empty(n, np.uint64)
    table_clips = np.empty(n, np.int32)
    for i in range(n):  # directory[c] is the next free place of cell c, then (after the loop) the start of c + 1
        cell = _key(hashes[i], mask) >> shift
        table_hashes[directory[cell]] = hashes[i]
        table_clips[directory[cell]] = clips[i]
        directory[cell] += 1
    for c in range(cells, 0, -1):
        directory[c] = directory[c - 1]
    directory[0] = 0
    written = 0
    for c in range(cells):  # sort each cell by key, drop keys shared by too many entries, compact in place
        lo, hi = directory[c], directory[c + 1]
        directory[c] = written
        if hi - lo > 1:
            _sort_cell(table_hashes, table_clips, lo, hi, mask)
        run = lo
        while run < hi:
            key = _key(table_hashes[run], mask)
            end = run + 1
            while end < hi and _key(table_hashes[end], mask) == key:
                end += 1
            if end - run <= max_bucket:
                for k in range(run, end):
                    table_hashes[written] = table_hashes[k]
                    table_clips[written] = table_clips[k]
                    written += 1
            run = end
    directory[cells] = written
    return directory, table_hashes[:written], table_clips[:written]  # views: crowded keys are few


@numba.njit(cache=True, nogil=True)
def _sort_cell(hashes, clips, lo, hi, mask):
    """Entries lo:hi ordered by key: an insertion sort for the usual few, a sort of the keys for a crowded cell."""
    if hi - lo <= 32:
        for i in range(lo + 1, hi):
            value, clip, key = hashes[i], clips[i], _key(hashes[i], mask)
            j = i
            while j > lo and _key(hashes[j - 1], mask) > key:
                hashes[j], clips[j] = hashes[j - 1], clips[j - 1]
                j -= 1
            hashes[j], clips[j] = value, clip
        return
    keys = np.empty(hi - lo, np.uint32)
    for i in range(lo, hi):
        keys[i - lo] = _key(hashes[i], mask)
    order = np.argsort(keys, kind="mergesort")
    hashes[lo:hi] = hashes[lo:hi][order]
    clips[lo:hi] = clips[lo:hi][order]


@numba.njit(cache=True, nogil=True)
def _probe(queries, query_clips, mask, shift, directory, hashes, clips, radius, n_clips, capacity):
    """Clip-pair codes (lo * n_clips + hi, lo < hi) of every query sharing its key with an entry whose hash is
    at most ``radius`` bits away; (codes, count), count > capacity when the buffer was too small. The queries are
    first ordered by the top 16 bits of their keys (a counting sort), so the probes walk the directory and the
    entries in order instead of reading memory at random."""
    n = len(queries)
    keys = np.empty(n, np.uint32)
    starts = np.zeros((1 << 16) + 1, np.int64)
    for q in range(n):
        keys[q] = _key(queries[q], mask)
        starts[(keys[q] >> 16) + 1] += 1
    for b in range(1 << 16):
        starts[b + 1] += starts[b]
    ordered_keys = np.empty(n, np.uint32)
    ordered_values = np.empty(n, np.uint64)
    ordered_clips = np.empty(n, np.int64)
    for q in range(n):
        b = keys[q] >> 16
        ordered_keys[starts[b]], ordered_values[starts[b]], ordered_clips[starts[b]] = keys[q], queries[q], query_clips[q]
        starts[b] += 1
    codes = np.empty(capacity, np.int64)
    count = 0
    for q in range(n):
        key, value = ordered_keys[q], ordered_values[q]
        cell = key >> shift
        for slot in range(directory[cell], directory[cell + 1]):
            entry_key = _key(hashes[slot], mask)
            if entry_key < key:
                continue
            if entry_key > key:
                break
            if popcount(value ^ hashes[slot]) <= radius:
                a, b = ordered_clips[q], np.int64(clips[slot])
                if a != b:
                    if count < capacity:
                        codes[count] = min(a, b) * n_clips + max(a, b)
                    count += 1
    return codes, count


@dataclass(frozen=True)
class HashTable:
    """The index hashes (and their clip numbers) keyed by ``mask``'s bits; ``near`` probes it."""

    mask: np.uint64
    shift: int
    directory: np.ndarray   # (cells + 1,) int32
    hashes: np.ndarray      # (entries,) uint64, by cell and key
    clips: np.ndarray       # (entries,) int32

    @classmethod
    def build(cls, hashes: np.ndarray, clips: np.ndarray, mask: np.uint64, max_bucket: int) -> HashTable:
        """One or two index entries per directory cell: most probes read one cell and find no key."""
        if len(hashes) >= 2**31:
            raise ValueError(f"{len(hashes)} index hashes: a table holds fewer than 2**31")
        shift = 32 - min(max(int(len(hashes)).bit_length() - 1, 4), 26)
        directory, table_hashes, table_clips = _build(np.ascontiguousarray(hashes, np.uint64),
                                                      np.ascontiguousarray(clips, np.int32), np.uint64(mask),
                                                      np.uint32(shift), max_bucket)
        return cls(np.uint64(mask), shift, directory, table_hashes, table_clips)

    def near(self, queries: np.ndarray, query_clips: np.ndarray, radius: int, n_clips: int) -> np.ndarray:
        """Distinct clip-pair codes (lo * n_clips + hi, ascending) of the queries' near collisions."""
        queries = np.ascontiguousarray(queries, np.uint64)
        query_clips = np.ascontiguousarray(query_clips, np.int32)
        capacity = len(queries) // 8 + 1024
        while True:
            codes, count = _probe(queries, query_clips, self.mask, np.uint32(self.shift), self.directory,
                                  self.hashes, self.clips, np.uint64(radius), np.int64(n_clips), capacity)
            if count <= capacity:
                return np.unique(codes[:count])
            capacity = count


@numba.njit(cache=True, nogil=True)
def views_of_queried_frames(hashes, offsets, views, lo, hi, stride):
    """(view hashes, clip numbers) of clips lo..hi-1: the ``views`` of every ``stride``-th frame, a view equal to
    the same view of the clip's queried frame before left out."""
    capacity = 0
    for clip in range(lo, hi):
        capacity += (offsets[clip + 1] - offsets[clip] + stride - 1) // stride * len(views)
    out = np.empty(capacity, np.uint64)
    owners = np.empty(capacity, np.int32)
    count = 0
    for clip in range(lo, hi):
        for row in range(offsets[clip], offsets[clip + 1], stride):
            for v in views:
                if row == offsets[clip] or hashes[row, v] != hashes[row - stride, v]:
                    out[count], owners[count] = hashes[row, v], clip
                    count += 1
    return out[:count], owners[:count]


@numba.njit(cache=True, nogil=True)
def vote_score(times_a, times_b, close_i, close_j, count, half):
    """``vote``'s score of its best offset window (the most distinct frames of the lesser clip agreeing on one
    offset) for the close frame pairs (close_i[:count], close_j[:count])."""
    lowest, highest = 2**62, -2**62
    windows = np.empty(count, np.int64)
    for k in range(count):
        windows[k] = np.int64(np.round((times_a[close_i[k]] - times_b[close_j[k]]) / half))
        lowest, highest = min(lowest, windows[k]), max(highest, windows[k])
    n_windows = highest - lowest + 3  # each pair votes for its window and both neighbours
    seen_a = np.zeros((n_windows, len(times_a)), np.bool_)
    seen_b = np.zeros((n_windows, len(times_b)), np.bool_)
    frames_a = np.zeros(n_windows, np.int64)
    frames_b = np.zeros(n_windows, np.int64)
    for k in range(count):
        for w in range(windows[k] - lowest, windows[k] - lowest + 3):
            if not seen_a[w, close_i[k]]:
                seen_a[w, close_i[k]] = True
                frames_a[w] += 1
            if not seen_b[w, close_j[k]]:
                seen_b[w, close_j[k]] = True
                frames_b[w] += 1
    best = 0
    for w in range(n_windows):
        best = max(best, min(frames_a[w], frames_b[w]))
    return best


@numba.njit(cache=True, nogil=True)
def worth(hashes, times, offsets, pairs, needed, views, max_distance, unspecific_share, still_limit, half):
    """``worth_voting`` for every pair, in compiled loops: per frame pair the least distance over the 40 view
    comparisons, per orientation the close frames of each clip, the close share, the closest pair and the offset
    vote's score."""
    keep = np.zeros(len(pairs), np.bool_)
    close_i = np.empty(0, np.int64)  # the close frame pairs of the pair at hand, grown to the largest pair judged
    close_j = np.empty(0, np.int64)
    for p in range(len(pairs)):
        a0, b0 = offsets[pairs[p, 0]], offsets[pairs[p, 1]]
        len_a, len_b = offsets[pairs[p, 0] + 1] - a0, offsets[pairs[p, 1] + 1] - b0
        if len_a == 0 or len_b == 0:
            continue
        if len_a * len_b > len(close_i):
            close_i, close_j = np.empty(len_a * len_b, np.int64), np.empty(len_a * len_b, np.int64)
        close_a = np.zeros(len_a, np.bool_)
        close_b = np.zeros(len_b, np.bool_)
        for orientation in range(2):  # 0: same orientation, 1: b mirrored against a (whole hash column 1)
            close_a[:] = False
            close_b[:] = False
            close, least = 0, 64
            for i in range(len_a):
                for j in range(len_b):
                    d = 64
                    whole_a, whole_b = hashes[a0 + i, orientation], hashes[b0 + j, orientation]
                    for v in views:
                        d = min(d, np.int64(popcount(hashes[a0 + i, v] ^ whole_b)),
                                np.int64(popcount(hashes[b0 + j, v] ^ whole_a)))
                    if d <= max_distance:
                        close_i[close], close_j[close] = i, j
                        close += 1
                        close_a[i] = True
                        close_b[j] = True
                    least = min(least, d)
            frames = min(close_a.sum(), close_b.sum())
            specific = close / (len_a * len_b) <= unspecific_share or least <= still_limit
            if frames >= needed[p] and specific and vote_score(
                    times[a0:a0 + len_a], times[b0:b0 + len_b], close_i, close_j, close, half) >= needed[p]:
                keep[p] = True
                break
    return keep
