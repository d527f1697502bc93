"""The duplicate_clusters path at scale: read every partition's fingerprint table, group, search, match, cluster.

    .venv/bin/python bench/bench_dedup_scale.py --clips 100000 [--partitions 400] [--runs 3] [--tables DIR] [--workers 2]

Per partition (a class) a fingerprint table as ``Fingerprint.to_frame`` writes it (plus the asset's clip
columns) is stored as Parquet; the run then does what the ``duplicate_clusters`` asset does, step by step and
timed (wall and CPU): read the tables one at a time into the fingerprint table (``PartitionTables``, as the IO
manager hands them to the asset, into ``fingerprint_table``), both search tiers, the confirmation of
every candidate, ``decide``. Contact sheets are left out (they decode the clustered videos). Fingerprints are
synthetic with the real shape (20 frames x 11 hashes; see ``partition_table`` for how they move and how the 1 %
planted copies are degraded). Every run is a process of its own, so its peak RSS is of the run only (the tables
are written by another child first; ``--tables`` keeps them for the next call).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from kinetics_assets.dedup import (
    MatchParams,
    SearchParams,
    candidate_pairs,
    clip_items,
    confirm_pairs,
    decide,
    fingerprint_table,
)
from kinetics_assets.dedup.fingerprint import HASH_COLUMNS
from resources.storage import PartitionTables, parquet_frame

sys.path.insert(0, str(Path(__file__).parent))
from bench_dedup import FRAMES
from bench_sandbox import machine_info


def _flip(hashes: np.ndarray, rng: np.random.Generator, low: int, high: int) -> np.ndarray:
    """``hashes`` with low..high (uniform, per hash) distinct random bits flipped (bits drawn one at a time, a bit
    drawn twice drawn again: a uniform subset of that size)."""
    n_bits = rng.integers(low, high + 1, size=hashes.shape)
    masks = np.zeros(hashes.shape, np.uint64)
    while (short := np.bitwise_count(masks) < n_bits).any():
        masks[short] |= np.uint64(1) << rng.integers(0, 64, size=int(short.sum())).astype(np.uint64)
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


def run(folder: Path, planted: np.ndarray, workers: int = 2) -> dict:
    steps, cpu, rss = {}, {}, {}
    start, start_cpu = time.perf_counter(), time.process_time()

    def step(name: str) -> None:
        nonlocal start, start_cpu
        now, now_cpu = time.perf_counter(), time.process_time()
        steps[name], cpu[name] = round(now - start, 2), round(now_cpu - start_cpu, 2)
        rss[name] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        start, start_cpu = now, now_cpu

    # what the IO manager hands the asset (PartitionTables: each partition's bytes read when its turn comes), then
    # what the asset does (its cluster sheets left out: they decode the clustered videos)
    paths = {path.stem: path for path in sorted(folder.glob("*.parquet"))}
    keys = list(paths)
    tables = PartitionTables(tuple(keys), lambda i, columns: parquet_frame(paths[keys[i]].read_bytes(), columns,
                                                                         text_as_categories=True))
    prints, clips = fingerprint_table(tables)
    step("read partitions into the table")
    pairs = candidate_pairs(prints, SearchParams(workers=workers))
    step("candidate search (both tiers)")
    matches = confirm_pairs(prints, pairs, MatchParams(workers=workers))
    step("confirm (offset vote)")
    decisions = decide(clip_items(clips), matches)
    digest = hashlib.sha256(decisions.to_csv(index=False).encode()).hexdigest()  # to compare code versions by
    decisions = decisions.merge(clips[["class_name", "origin"]], left_on="clip_id", right_index=True)
    step("decide (clusters, keepers)")
    position = {item: k for k, item in enumerate(prints.ids.tolist())}
    found = {(min(m.a, m.b), max(m.a, m.b)) for m in matches}
    kinds = {tuple(sorted((position[f"clip{a:07d}"], position[f"clip{b:07d}"]))): bool(still)
             for a, b, still in planted}
    recall = {f"planted_recall_{kind}": float(np.mean([pair in found for pair, still in kinds.items()
                                                        if still == (kind == "still")])) for kind in ("moving", "still")}
    return {"clips": len(prints), "steps_s": steps, "steps_cpu_s": cpu, "peak_rss_mib_after": rss,
            "total_s": round(sum(steps.values()), 1), "total_cpu_s": round(sum(cpu.values()), 1),
            "candidates": len(pairs), "matches": len(matches), "decisions": len(decisions),
            "decisions_sha256": digest,
            "planted_recall": float(np.mean([pair in found for pair in kinds])), **recall,
            "false_matches": len(found - set(kinds)),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def _child(*args: str) -> str:
    return subprocess.run([sys.executable, __file__, *args], check=True, stdout=subprocess.PIPE, text=True).stdout


def measure(folder: Path, runs: int, workers: int) -> dict:
    """``runs`` runs on the tables in ``folder``, each in a process of its own (its own peak RSS); the medians."""
    results, machine = [], machine_info()
    for _ in range(runs):
        results.append(json.loads(_child("--measure", str(folder), "--workers", str(workers))))
        print(json.dumps(results[-1]), flush=True)
    return {"clips": results[0]["clips"], "runs": runs, "workers": workers, "machine": machine, "load_average_at_end": os.getloadavg(),
            **{f"median_{key}": float(np.median([r[key] for r in results]))
               for key in ("total_s", "total_cpu_s", "peak_rss_mib")},
            "median_steps_s": {name: float(np.median([r["steps_s"][name] for r in results]))
                               for name in results[0]["steps_s"]},
            "same_decisions_every_run": len({r["decisions_sha256"] for r in results}) == 1}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=100_000)
    parser.add_argument("--partitions", type=int, default=400)
    parser.add_argument("--runs", type=int, default=1, help="runs on the same tables; medians are printed last")
    parser.add_argument("--workers", type=int, default=2, help="threads of the search and the batched rejection")
    parser.add_argument("--tables", type=Path, help="keep the partition tables there (written if missing)")
    parser.add_argument("--write", type=Path, help="only write the partition tables (and planted.npy) there")
    parser.add_argument("--measure", type=Path, help="only run once on the tables there")
    args = parser.parse_args()
    if args.write:
        np.save(args.write / "planted.npy", write_partitions(args.write, args.clips, args.partitions))
    elif args.measure:
        print(json.dumps(run(args.measure, np.load(args.measure / "planted.npy"), args.workers)))
    elif args.tables:
        args.tables.mkdir(parents=True, exist_ok=True)
        if not (args.tables / "planted.npy").exists():
            _child("--clips", str(args.clips), "--partitions", str(args.partitions), "--write", str(args.tables))
        print(json.dumps(measure(args.tables, args.runs, args.workers)))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            _child("--clips", str(args.clips), "--partitions", str(args.partitions), "--write", tmp)
            print(json.dumps(measure(Path(tmp), args.runs, args.workers)))


if __name__ == "__main__":
    main()
