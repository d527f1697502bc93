"""Candidate search finds still shots 12 bits apart, drops far collisions; fingerprint tables round-trip."""

from __future__ import annotations

import numpy as np
import pandas as pd

from kinetics_assets.dedup.fingerprint import HASH_COLUMNS, Fingerprint
from kinetics_assets.dedup.search import (
    SearchParams,
    candidate_pairs,
    candidate_pairs_from_arrays,
    consensus,
    still_shots,
)
from kinetics_assets.dedup.table import fingerprints_from_frame


def _flip(value: int, rng: np.random.Generator, bits: int) -> int:
    for bit in rng.choice(64, size=bits, replace=False):
        value ^= 1 << int(bit)
    return value


def _still(rng: np.random.Generator, views: list[int], noise: int = 1) -> Fingerprint:
    """20 frames of one still shot: every view's hash with `noise` fresh random bits flipped per frame."""
    hashes = np.array([[_flip(v, rng, noise) for v in views] for _ in range(20)], dtype=np.uint64)
    return Fingerprint(np.arange(20) * 0.5, hashes, 10.0, np.full(20, 10.0, np.float32))


def test_still_shot_copies_twelve_bits_apart_are_candidates_among_unrelated_clips():
    rng = np.random.default_rng(5)
    found = 0
    for trial in range(20):
        original = [int(v) for v in rng.integers(0, 2**63, size=len(HASH_COLUMNS))]
        copy = [_flip(v, rng, 12) for v in original]          # a degraded re-upload: every view 12 bits off
        clips = [_still(rng, original), _still(rng, copy)]
        clips += [_still(rng, [int(v) for v in rng.integers(0, 2**63, size=len(HASH_COLUMNS))]) for _ in range(30)]
        pairs = candidate_pairs(clips, SearchParams(seed=trial))
        found += [0, 1] in pairs.tolist()
        assert len(pairs) <= 1, f"unrelated still clips became candidates: {pairs.tolist()}"
    # one hash pair 12 bits apart shares a 16-bit key in one of 64 tables with p = 1 - (1 - 0.021)**64 = 0.74
    # (long keys alone: 16 tables of 28 bits, p = 0.006); real copies have several close views, so more chances
    assert found >= 13, f"only {found} of 20 still-shot copies 12 bits apart were found"


def test_collisions_further_apart_than_the_radius_are_no_candidates():
    index, query = np.array([0xFFFF], dtype=np.uint64), np.array([0], dtype=np.uint64)    # 16 bits apart
    search = dict(tables=64, bits=8, seed=1)   # so many short keys that the two collide in some table
    args = (index, np.array([1]), query, np.array([0]), 2)
    assert candidate_pairs_from_arrays(*args, SearchParams(radius=16, **search)).tolist() == [[0, 1]]
    assert len(candidate_pairs_from_arrays(*args, SearchParams(radius=14, **search))) == 0


def test_still_shots_and_their_consensus():
    frames = np.array([0b0111, 0b0011, 0b0111, 0b0101, 0xFFFF_0000, 0xFFFF_0001, 3, 3, 3, 3], dtype=np.uint64)
    clip_starts = np.zeros(len(frames), bool)
    clip_starts[[0, 7]] = True                          # a second clip begins inside the last run of 3s
    starts, ends = still_shots(frames, clip_starts, min_frames=3, max_apart=2)
    assert starts.tolist() == [0, 7] and ends.tolist() == [4, 10]
    assert consensus(frames[:, None], starts, ends).tolist() == [[0b0111], [3]]


def test_fingerprint_table_round_trips_any_row_order_and_old_tables_read_as_flat():
    a = Fingerprint(np.array([0.0, 0.5]), np.arange(2 * len(HASH_COLUMNS), dtype=np.uint64).reshape(2, -1), 1.0,
                    np.array([7.0, 8.0], np.float32))
    b = Fingerprint(np.array([0.0]), np.full((1, len(HASH_COLUMNS)), 99, np.uint64), 0.5, np.array([3.0], np.float32))
    table = pd.concat([a.to_frame("clip_b"), b.to_frame("clip_a")]).iloc[[2, 1, 0]]  # clips and times shuffled
    read = fingerprints_from_frame(table)
    assert list(read) == ["clip_a", "clip_b"]
    assert np.array_equal(read["clip_b"].hashes, a.hashes) and read["clip_b"].times.tolist() == [0.0, 0.5]
    assert read["clip_b"].detail.tolist() == [7.0, 8.0] and read["clip_a"].duration == 0.5
    old = fingerprints_from_frame(table.drop(columns="detail"))
    assert old["clip_b"].detail.tolist() == [0.0, 0.0]
