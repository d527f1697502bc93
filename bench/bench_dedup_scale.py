"""The duplicate_clusters path at scale: read every partition's fingerprint table, group, search, match, cluster.

    .venv/bin/python bench/bench_dedup_scale.py --clips 100000 [--partitions 400]

Per partition (a class) a fingerprint table as ``Fingerprint.to_frame`` writes it (plus the asset's clip
columns) is stored as Parquet; the run then does what the ``duplicate_clusters`` asset does, step by step and
timed: read and concatenate the tables, the clip table (``drop_duplicates`` + ``set_index``), per-clip
fingerprints (``fingerprints_from_frame``), the ClipItems (the asset's ``.at`` look-ups), ``find_matches`` (both
search tiers, then the offset vote of every candidate), ``decide``. Contact sheets are left out (they decode the
clustered videos). Fingerprints are synthetic with the real shape (see ``bench_dedup.synthetic_block``: 20
frames x 11 hashes drifting a few bits, 1 % planted near-duplicates).
"""

from __future__ import annotations

import argparse
import json
import resource
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
from bench_dedup import FRAMES, synthetic_block


def write_partitions(folder: Path, n_clips: int, n_partitions: int) -> np.ndarray:
    """One Parquet table per partition; returns the planted (original, copy) clip numbers."""
    rng = np.random.default_rng(0)
    hashes, planted = synthetic_block(n_clips, rng)
    owner = rng.integers(0, n_partitions, size=n_clips)
    times = np.tile(np.arange(FRAMES) * 0.5, n_clips)
    clip_ids = np.repeat(np.array([f"clip{k:07d}" for k in range(n_clips)]), FRAMES)
    table = pd.DataFrame({"clip_id": clip_ids, "t": times, "duration": 10.0,
                          "detail": rng.uniform(2.0, 15.0, n_clips * FRAMES).astype(np.float32)})
    for k, name in enumerate(HASH_COLUMNS):
        table[name] = hashes[:, :, k].reshape(-1)
    frame_owner = np.repeat(owner, FRAMES)
    for part in range(n_partitions):
        rows = table[frame_owner == part].assign(class_name=f"class{part}", origin="new", youtube_id="x",
                                                 path="/nonexistent.mp4", height=360)
        rows.to_parquet(folder / f"{part}.parquet")
    return planted


def run(folder: Path, planted: np.ndarray) -> dict:
    steps, start = {}, time.perf_counter()

    def step(name: str) -> None:
        nonlocal start
        now = time.perf_counter()
        steps[name] = round(now - start, 2)
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
    hits = [(min(position[f"clip{a:07d}"], position[f"clip{b:07d}"]),
             max(position[f"clip{a:07d}"], position[f"clip{b:07d}"])) in found for a, b in planted]
    return {"clips": len(ids), "steps_s": steps, "total_s": round(sum(steps.values()), 1),
            "candidates": len(pairs), "matches": len(matches), "decisions": len(decisions),
            "planted_recall": float(np.mean(hits)),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=100_000)
    parser.add_argument("--partitions", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        planted = write_partitions(Path(tmp), args.clips, args.partitions)
        print(json.dumps(run(Path(tmp), planted)))


if __name__ == "__main__":
    main()
