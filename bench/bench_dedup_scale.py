"""The duplicate_clusters path at scale: read every partition's fingerprint table, group, search, match, cluster.

    .venv/bin/python bench/bench_dedup_scale.py --clips 100000 [--partitions 400]

Per partition (a class) a fingerprint table as ``Fingerprint.to_frame`` writes it (plus the asset's clip
columns) is stored as Parquet; the run then does what the ``duplicate_clusters`` asset does, step by step and
timed: read and concatenate the tables, the clip table (``drop_duplicates`` + ``set_index``), per-clip
fingerprints (``fingerprints_from_frame``), the ClipItems (the asset's ``.at`` look-ups), ``find_matches`` (both
search tiers, then the offset vote of every candidate), ``decide``. Contact sheets are left out (they decode the
clustered videos). Fingerprints are synthetic with the real shape (20 frames x 11 hashes; see
``partition_table`` for how they move and how the 1 % planted copies are degraded). Peak RSS is of the run
only (the tables are written by a child process first).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from kinetics_assets.dedup import ClipItem, decide, fingerprints_from_frame
from kinetics_assets.dedup.fingerprint import HASH_COLUMNS
from kinetics_assets.dedup.match import confirm_pairs
from kinetics_assets.dedup.search import candidate_pairs

sys.path.insert(0, str(Path(__file__).parent))
from bench_dedup import FRAMES


def _flip(hashes: np.ndarray, rng: np.random.Generator, low: int, high: int) -> np.ndarray:
    """``hashes`` with low..high (uniform, per hash) distinct random bits flipped."""
    n_bits = rng.integers(low, high + 1, size=hashes.shape)
    order = np.argsort(rng.random((*hashes.shape, 64), dtype=np.float32), axis=-1).astype(np.uint64)
    chosen = np.arange(64) < n_bits[..., None]
    masks = np.bitwise_or.reduce(np.where(chosen, np.uint64(1) << order, np.uint64(0)), axis=-1)
    return hashes ^ masks


def partition_table(part: int, n_clips: int, first_clip: int, rng: np.random.Generator
                    ) -> tuple[pd.DataFrame, np.ndarray]:
    """One class's fingerprint rows and its planted (original, copy, original is still) clip numbers.

    A fifth of the clips are still shots (every frame the same picture, 0-2 bits of noise, detailed); the
    others move (each sampled frame 6-10 bits on from the one before, per view). 1 % are degraded copies of
    another clip of the class (every hash 4-12 bits off, half of them mirrored).
    """
    n_copies = max(1, n_clips // 100)
    n_orig = n_clips - n_copies
    still = rng.random(n_orig) < 0.2
    base = rng.integers(0, 2**63, size=(n_orig, 1, len(HASH_COLUMNS)), dtype=np.uint64)
    steps = _flip(np.zeros((n_orig, FRAMES, len(HASH_COLUMNS)), np.uint64), rng, 6, 10)
    steps[:, 0] = 0
    walk = np.bitwise_xor.accumulate(steps, axis=1)
    noise = _flip(np.zeros_like(walk), rng, 0, 2)
    hashes = base ^ np.where(still[:, None, None], noise, walk)
    sources = rng.choice(n_orig, size=n_copies, replace=False)
    copies = _flip(hashes[sources], rng, 4, 12)
    mirrored = rng.random(n_copies) < 0.5
    copies[mirrored, :, 0], copies[mirrored, :, 1] = copies[mirrored, :, 1].copy(), copies[mirrored, :, 0].copy()
    hashes = np.concatenate([hashes, copies])
    detail = np.where(np.r_[still, still[sources]][:, None], rng.uniform(8, 15, (n_clips, FRAMES)),
                      rng.uniform(2, 15, (n_clips, FRAMES))).astype(np.float32)
    numbers = first_clip + np.arange(n_clips)
    table = pd.DataFrame({"clip_id": np.repeat([f"clip{k:07d}" for k in numbers], FRAMES),
                          "t": np.tile(np.arange(FRAMES) * 0.5, n_clips), "duration": 10.0,
                          "detail": detail.reshape(-1)})
    for k, name in enumerate(HASH_COLUMNS):
        table[name] = hashes[:, :, k].reshape(-1)
    table = table.assign(class_name=f"class{part}", origin="new", youtube_id="x", path="/nonexistent.mp4", height=360)
    return table, np.stack([first_clip + sources, first_clip + n_orig + np.arange(n_copies), still[sources]], axis=1)


def write_partitions(folder: Path, n_clips: int, n_partitions: int) -> np.ndarray:
    """One Parquet table per partition; returns the planted (original, copy, original is still) rows."""
    rng = np.random.default_rng(0)
    sizes = np.full(n_partitions, n_clips // n_partitions)
    sizes[: n_clips % n_partitions] += 1
    planted, first = [], 0
    for part, size in enumerate(sizes.tolist()):
        table, pairs = partition_table(part, size, first, rng)
        table.to_parquet(folder / f"{part}.parquet")
        planted.append(pairs)
        first += size
    return np.concatenate(planted)


def run(folder: Path, planted: np.ndarray) -> dict:
    steps, rss, start = {}, {}, time.perf_counter()

    def step(name: str) -> None:
        nonlocal start
        now = time.perf_counter()
        steps[name] = round(now - start, 2)
        rss[name] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        start = now

    hashed = pd.concat([pd.read_parquet(p) for p in sorted(folder.glob("*.parquet"))], ignore_index=True)
    step("read + concat partitions")
    clips = hashed.drop_duplicates("clip_id").set_index("clip_id")
    step("clip table")
    prints = fingerprints_from_frame(hashed)
    ids = list(prints)
    step("fingerprints_from_frame")
    items = [ClipItem(clip_id=item, label=clips.at[item, "class_name"],
                      is_previous_edition=clips.at[item, "origin"] == "previous",
                      source_height=int(clips.at[item, "height"] or 0)) for item in ids]
    step("ClipItems (.at look-ups)")
    fingerprints = [prints[item] for item in ids]
    pairs = candidate_pairs(fingerprints)
    step("candidate search (both tiers)")
    matches = confirm_pairs(fingerprints, pairs)
    step("confirm (offset vote)")
    decisions = decide(items, matches)
    step("decide (clusters, keepers)")
    position = {item: k for k, item in enumerate(ids)}
    found = {(min(m.a, m.b), max(m.a, m.b)) for m in matches}
    kinds = {tuple(sorted((position[f"clip{a:07d}"], position[f"clip{b:07d}"]))): bool(still)
             for a, b, still in planted}
    recall = {f"planted_recall_{kind}": float(np.mean([pair in found for pair, still in kinds.items()
                                                        if still == (kind == "still")])) for kind in ("moving", "still")}
    return {"clips": len(ids), "steps_s": steps, "peak_rss_mib_after": rss, "total_s": round(sum(steps.values()), 1),
            "candidates": len(pairs), "matches": len(matches), "decisions": len(decisions),
            "planted_recall": float(np.mean([pair in found for pair in kinds])), **recall,
            "false_matches": len(found - set(kinds)),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=100_000)
    parser.add_argument("--partitions", type=int, default=400)
    parser.add_argument("--write", type=Path, help="only write the partition tables (and planted.npy) there")
    args = parser.parse_args()
    if args.write:
        np.save(args.write / "planted.npy", write_partitions(args.write, args.clips, args.partitions))
        return
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, __file__, "--clips", str(args.clips), "--partitions", str(args.partitions),
                        "--write", tmp], check=True)
        print(json.dumps(run(Path(tmp), np.load(Path(tmp) / "planted.npy"))))


if __name__ == "__main__":
    main()
