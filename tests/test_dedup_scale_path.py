"""duplicate_clusters' path through flat arrays gives the clusters the per-clip path gave, byte for byte.

The fixture has what the flat path must get right: clips of many lengths (3 to 41 frames), still and moving
footage, mirrored, sub-clip and chained copies, a previous-edition clip, frames out of order, a clip split across
two tables.
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np
import pandas as pd
import pytest

from kinetics_assets.dedup import clip_items, decide, find_matches, fingerprint_table
from kinetics_assets.dedup.fingerprint import HASH_COLUMNS
from kinetics_assets.dedup.match import MatchParams, match_fingerprints, worth_voting
from kinetics_assets.dedup.search import candidate_pairs
from resources.storage import PartitionTables

# sha256 of decide(...).to_csv(index=False) for _frames(), from the per-clip path before the flat arrays (the code
# of 57589b0^: drop_duplicates + .at ClipItems, fingerprints_from_frame, per-pair find_matches, decide)
DECISIONS_SHA256 = "6ea7f887d469718286e2a5c8a95b63e43e85c643c05ea3ceabc9adc01a8c5734"


@functools.cache
def _frames(seed: int = 7) -> tuple[pd.DataFrame, ...]:
    rng = np.random.default_rng(seed)

    def flip(hashes: np.ndarray, low: int, high: int) -> np.ndarray:  # low..high distinct bits of every hash
        n_bits = rng.integers(low, high + 1, size=hashes.shape)
        masks = np.zeros(hashes.shape, np.uint64)
        while (short := np.bitwise_count(masks) < n_bits).any():
            masks[short] |= np.uint64(1) << rng.integers(0, 64, size=int(short.sum())).astype(np.uint64)
        return hashes ^ masks

    clips = []  # (hashes (n, 11), times)
    for _ in range(240):
        length = int(rng.choice([20, 20, 20, 12, 3, 41]))
        base = rng.integers(0, 2**63, size=(1, len(HASH_COLUMNS)), dtype=np.uint64)
        if rng.random() < 0.25:
            hashes = flip(np.repeat(base, length, axis=0), 0, 2)
        else:
            hashes = base ^ np.bitwise_xor.accumulate(flip(np.zeros((length, len(HASH_COLUMNS)), np.uint64), 5, 10))
        clips.append((hashes, np.arange(length) * 0.5))
    for source in rng.choice(len(clips), size=40, replace=False).tolist():
        hashes, times = clips[source]
        kind = rng.random()
        if kind < 0.3:  # mirrored copy
            copy = flip(hashes, 2, 9)
            copy[:, [0, 1]] = copy[:, [1, 0]]
        elif kind < 0.6 and len(times) >= 12:  # a 4-s sub-clip from frame 4
            copy, times = flip(hashes[4:12], 1, 8), times[4:12] - times[4]
        elif kind < 0.7:  # a compilation holding the clip from 15 s on
            walk = flip(np.zeros((60, len(HASH_COLUMNS)), np.uint64), 5, 10)
            others = rng.integers(0, 2**63, size=(1, len(HASH_COLUMNS)), dtype=np.uint64) ^ np.bitwise_xor.accumulate(walk)
            copy = np.concatenate([others[:30], flip(hashes, 1, 8), others[30:]])
            times = np.arange(len(copy)) * 0.5
        else:
            copy = flip(hashes, 1, 10)
        clips.append((copy, times))
    clips.append((flip(clips[-1][0], 1, 5), clips[-1][1]))  # a copy of a copy
    rows = []
    for k, (hashes, times) in enumerate(clips):
        frame = pd.DataFrame({"clip_id": f"c{(k * 7919) % 1000:03d}", "t": times, "duration": times[-1] + 0.5,
                              "detail": rng.uniform(3, 15, len(times)).astype(np.float32)})
        for column, name in enumerate(HASH_COLUMNS):
            frame[name] = hashes[:, column]
        rows.append(frame.assign(class_name=f"class{k % 3}", origin="previous" if k == 5 else "new",
                                 path=f"/clips/{k}.mp4", height=int(rng.choice([240, 360, 720]))))
    table = pd.concat(rows, ignore_index=True)
    table = pd.concat([table.iloc[[3, 0, 2, 1]], table.iloc[4:]], ignore_index=True)  # frames out of order
    split = len(table) // 2 + 3  # inside a clip: its frames in two tables
    return table.iloc[:split], table.iloc[split:]


def test_flat_path_clusters_byte_identical_to_per_clip_path():
    frames = _frames()
    prints, clips = fingerprint_table(frames)
    decisions = decide(clip_items(clips), find_matches(prints))
    kinds = decisions["reason"].str.extract(r"\((\S+) match")[0].value_counts().to_dict()
    assert kinds == {"re-upload": 29, "sub-clip": 7, "compilation": 3}  # what the fixture plants, all found
    assert hashlib.sha256(decisions.to_csv(index=False).encode()).hexdigest() == DECISIONS_SHA256


def test_table_of_grouped_rows_and_of_shuffled_rows_agree_and_clip_columns_come_from_the_first_row():
    frames = _frames()
    whole = pd.concat(frames, ignore_index=True)
    grouped, clips = fingerprint_table([whole.sort_values(["clip_id", "t"], kind="stable")])
    shuffled, shuffled_clips = fingerprint_table([whole.sample(frac=1.0, random_state=3)])
    for name in ("ids", "offsets", "times", "hashes", "detail", "durations"):
        assert np.array_equal(getattr(grouped, name), getattr(shuffled, name)), name
    first = whole.drop_duplicates("clip_id").set_index("clip_id").loc[grouped.ids]
    assert clips[["class_name", "origin", "path", "height"]].equals(first[["class_name", "origin", "path", "height"]])
    assert shuffled_clips.index.tolist() == grouped.ids.tolist()
    assert [fp.times.tolist() for fp in grouped] == [fp.times.tolist() for fp in shuffled]


def test_batched_rejection_keeps_every_pair_that_matches():
    prints, _ = fingerprint_table(_frames())
    everyone = np.stack(np.triu_indices(80, k=1), axis=1)  # mostly unrelated pairs, and clips of every length
    pairs = np.unique(np.concatenate([candidate_pairs(prints), everyone]), axis=0)
    params = MatchParams()
    worth = worth_voting(prints, pairs, params)
    matched = [match_fingerprints(prints[a], prints[b], params, a, b, len(prints)) is not None for a, b in pairs.tolist()]
    assert not np.any(np.array(matched) & ~worth), pairs[np.array(matched) & ~worth].tolist()
    # the batch rejects nearly all unrelated pairs, and nearly all it keeps do match (the offset vote is in it)
    assert 0 < worth.sum() < len(pairs) / 10 and sum(matched) >= 0.8 * worth.sum()


def test_an_empty_table_without_frame_columns_leaves_the_hashes_exact():
    # a class with nothing fingerprinted stores a table of clip columns only; concatenated with the others by
    # pandas it turned every uint64 hash column into float64, rounding away the low bits of every hash
    frames = _frames()
    empty = pd.DataFrame(columns=["clip_id", "class_name", "origin", "path", "height"])
    with_empty, _ = fingerprint_table([empty, *frames])
    without, _ = fingerprint_table(frames)
    assert np.array_equal(with_empty.hashes, without.hashes)
    assert np.array_equal(np.sort(without.hashes.ravel()), np.sort(pd.concat(frames)[list(HASH_COLUMNS)].to_numpy().ravel()))


def test_a_table_missing_hash_columns_is_named():
    frames = _frames()
    with pytest.raises(ValueError, match=r"fingerprint table 1 lacks columns \['crop_centre'\]"):
        fingerprint_table([frames[0], frames[1].drop(columns="crop_centre")])


def test_tables_are_read_one_at_a_time_ids_and_times_first():
    frames = list(_frames())
    reads = []

    def load(i: int, columns):
        reads.append((i, columns))
        return frames[i] if columns is None else frames[i][list(columns)]

    table, _ = fingerprint_table(PartitionTables(("a", "b"), load))
    assert reads == [(0, ("clip_id", "t")), (1, ("clip_id", "t")), (0, None), (1, None)]
    expected, _ = fingerprint_table(frames)
    assert np.array_equal(table.hashes, expected.hashes) and np.array_equal(table.offsets, expected.offsets)


def test_a_table_that_changes_between_its_reads_is_an_error():
    frames = list(_frames())
    calls = {"n": 0}

    def load(i: int, columns):
        calls["n"] += 1
        rows = frames[i] if calls["n"] <= 2 else frames[i].iloc[:-1]  # a partition re-materialized meanwhile
        return rows if columns is None else rows[list(columns)]

    with pytest.raises(RuntimeError, match=r"fingerprint table 0 \(a\) changed while read"):
        fingerprint_table(PartitionTables(("a", "b"), load))
