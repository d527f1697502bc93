"""The compiled hash table finds exactly the near collisions a brute-force pass over every (query, entry) finds."""

from __future__ import annotations

import numpy as np

from kinetics_assets.dedup.kernels import FOLD, HashTable


def _brute_force(index: np.ndarray, clips: np.ndarray, queries: np.ndarray, query_clips: np.ndarray,
                 mask: np.uint64, radius: int, max_bucket: int, n_clips: int) -> list[int]:
    def keys(values: np.ndarray) -> np.ndarray:
        return (((values & mask) * FOLD) >> np.uint64(32)).astype(np.uint32)

    index_keys, query_keys = keys(index), keys(queries)
    distinct, counts = np.unique(index_keys, return_counts=True)
    crowded = set(distinct[counts > max_bucket].tolist())
    same = (query_keys[:, None] == index_keys[None, :]) & ~np.isin(index_keys, list(crowded))[None, :]
    near = np.bitwise_count(queries[:, None] ^ index[None, :]) <= radius
    q, e = np.nonzero(same & near)
    lo, hi = np.minimum(query_clips[q], clips[e]).astype(np.int64), np.maximum(query_clips[q], clips[e]).astype(np.int64)
    return sorted(set((lo[lo != hi] * n_clips + hi[lo != hi]).tolist()))


def test_near_collisions_equal_brute_force_with_crowded_keys_left_out():
    rng = np.random.default_rng(3)
    n_clips, mask = 300, np.uint64(0x0F0F_00FF_F000_0F0F)  # 28 bits: many keys shared at this size
    index = rng.integers(0, 2**63, size=3000, dtype=np.uint64)
    index[:40] = index[0]                            # one key held by 40 entries: crowded at max_bucket 32
    index[40:60] = index[40] ^ np.uint64(1 << 4)      # another key held by 20 entries (bit 4 is not in the mask)
    clips = rng.integers(0, n_clips, size=len(index)).astype(np.int32)
    flips = np.array([np.uint64(sum(1 << int(b) for b in rng.choice(64, size=int(rng.integers(0, 16)), replace=False)))
                      for _ in range(len(index))], dtype=np.uint64)
    queries = np.concatenate([index ^ flips, rng.integers(0, 2**63, size=2000, dtype=np.uint64)])
    query_clips = rng.integers(0, n_clips, size=len(queries)).astype(np.int32)
    table = HashTable.build(index, clips, mask, max_bucket=32)
    for radius in (0, 6, 12, 64):
        found = table.near(queries, query_clips, radius, n_clips).tolist()
        assert found == _brute_force(index, clips, queries, query_clips, mask, radius, 32, n_clips), radius
    assert len(table.near(queries, query_clips, 64, n_clips)) > 300  # the reference is not trivially empty


def test_a_full_output_buffer_grows_instead_of_dropping_pairs():
    # every query collides with every entry (one key), far more pairs than the first buffer holds
    index = np.zeros(500, np.uint64)
    clips = np.arange(500, dtype=np.int32)
    queries = np.zeros(1000, np.uint64)
    query_clips = np.arange(500, 1500, dtype=np.int32)
    codes = HashTable.build(index, clips, np.uint64(0xFFFF), max_bucket=512).near(queries, query_clips, 0, 1500)
    assert len(codes) == 500 * 1000


def test_empty_index_and_queries():
    table = HashTable.build(np.zeros(0, np.uint64), np.zeros(0, np.int32), np.uint64(0xFF), max_bucket=4)
    assert table.near(np.arange(5, dtype=np.uint64), np.arange(5, dtype=np.int32), 64, 5).tolist() == []
    full = HashTable.build(np.arange(5, dtype=np.uint64), np.arange(5, dtype=np.int32), np.uint64(0xFF), 4)
    assert full.near(np.zeros(0, np.uint64), np.zeros(0, np.int32), 64, 5).tolist() == []
