"""Benchmark dedup: fingerprint throughput on rendered clips, candidate search time/memory on synthetic hashes.

    .venv/bin/python bench/bench_dedup.py [--sizes 10000 100000 300000] [--write-results]
    .venv/bin/python bench/bench_dedup.py --search-one 1000000      # one size, prints a JSON line

Synthetic clips have the real shape (20 frames, each with whole-frame, mirrored and 9 crop-window hashes);
frames of a clip drift by a few bits (as footage does), and 1 % of clips get a planted near-duplicate whose
frames carry 0-6 flipped bits (half of them mirrored). Each size runs in its own process so its peak RSS is its
own. Targets (issue 6): 1M clips searched in < 10 min on 2 cores within 4 GB; growth near n log n.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from kinetics_assets.dedup.fingerprint import HASH_COLUMNS
from kinetics_assets.dedup.search import SearchParams, candidate_pairs_from_arrays

sys.path.insert(0, str(Path(__file__).parent))
from bench_sandbox import machine_info

RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION = "## Dedup"
FRAMES = 20
DUP_SHARE = 0.01


def _flip(hashes: np.ndarray, rng: np.random.Generator, max_bits: int) -> np.ndarray:
    out = hashes.copy()
    n_bits = rng.integers(0, max_bits + 1, size=hashes.shape)
    for b in range(max_bits):
        bit = rng.integers(0, 64, size=hashes.shape).astype(np.uint64)
        out ^= np.where(n_bits > b, np.uint64(1) << bit, np.uint64(0))
    return out


def synthetic_block(n_clips: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(hashes (n_clips, FRAMES, len(HASH_COLUMNS)) uint64, planted pairs (m, 2) original < copy) of one block."""
    n_orig = n_clips - int(n_clips * DUP_SHARE)
    base = rng.integers(0, 2 ** 63, size=(n_orig, 1, len(HASH_COLUMNS)), dtype=np.uint64)
    hashes = base ^ _flip(np.zeros((n_orig, FRAMES, len(HASH_COLUMNS)), np.uint64), rng, 6)  # footage drifts
    sources = rng.choice(n_orig, size=n_clips - n_orig, replace=False)
    copies = _flip(hashes[sources], rng, 6)
    mirrored = rng.random(len(sources)) < 0.5
    copies[mirrored, :, 0], copies[mirrored, :, 1] = copies[mirrored, :, 1].copy(), copies[mirrored, :, 0].copy()
    return np.concatenate([hashes, copies]), np.stack([sources, np.arange(n_orig, n_clips)], axis=1)


def synthetic_arrays(n_clips: int, params: SearchParams, block: int = 50_000, seed: int = 0):
    """Index and query arrays as the search's moving tier lays them out, built block by block."""
    rng = np.random.default_rng(seed)
    index, queries, planted = [], [], []
    for lo in range(0, n_clips, block):
        hashes, pairs = synthetic_block(min(block, n_clips - lo), rng)
        index.append(hashes[:, :, :2].reshape(-1))
        queries.append(hashes[:, ::params.query_stride][:, :, [0, *range(2, len(HASH_COLUMNS))]].reshape(-1))
        planted.append(pairs + lo)
    index, queries = np.concatenate(index), np.concatenate(queries)
    clips = np.arange(n_clips, dtype=np.int32)
    return (index, np.repeat(clips, len(index) // n_clips), queries, np.repeat(clips, len(queries) // n_clips),
            np.concatenate(planted))


def run_search(n_clips: int) -> dict:
    params = SearchParams()
    index, index_clips, queries, query_clips, planted = synthetic_arrays(n_clips, params)
    inputs_mib = sum(a.nbytes for a in (index, index_clips, queries, query_clips)) / 2 ** 20
    tracemalloc.start()
    start = time.perf_counter()
    pairs = candidate_pairs_from_arrays(index, index_clips, queries, query_clips, n_clips, params)
    seconds = time.perf_counter() - start
    search_peak_mib = tracemalloc.get_traced_memory()[1] / 2 ** 20
    tracemalloc.stop()
    # Peak RSS of building the inputs and searching, read before scoring (a set of 15M pairs would dominate it).
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    pair_code = pairs[:, 0].astype(np.int64) * n_clips + pairs[:, 1]
    planted_code = planted[:, 0].astype(np.int64) * n_clips + planted[:, 1]
    recall = float(np.isin(planted_code, pair_code).mean()) if len(planted) else 1.0
    return {"clips": n_clips, "index_hashes": len(index), "queries": len(queries), "seconds": seconds,
            "candidates": len(pairs), "planted": len(planted), "planted_recall": recall,
            "inputs_mib": inputs_mib, "search_peak_mib": search_peak_mib, "peak_rss_mib": peak_rss_mib}


def bench_fingerprint(n_clips: int = 12) -> dict:
    """Render+encode n 10-s 160x120 clips with the sandbox painter, then time fingerprinting them."""
    from kinetics_assets.dedup.fingerprint import fingerprint_video
    from resources.sandbox.render import Scene, class_motion, encode_mp4

    with tempfile.TemporaryDirectory() as tmp:
        paths = [encode_mp4(Scene(look_seed=k, width=160, height=120, fps=25, n_frames=250,
                                  motion=class_motion("dancing ballet"), action_end=10.0), Path(tmp) / f"{k}.mp4")
                 for k in range(n_clips)]
        start = time.perf_counter()
        for p in paths:
            fingerprint_video(p)
        seconds = time.perf_counter() - start
    return {"clips": n_clips, "seconds": seconds, "clips_per_s": n_clips / seconds}


def write_section(text: str) -> None:
    """Replace the section's own text, up to its first ### subsection (other benches' figures) or the next ##."""
    current = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    start = current.find(SECTION + "\n")
    if start < 0:
        RESULTS.write_text(current.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n", encoding="utf-8")
        return
    ends = [e for e in (current.find("\n### ", start), current.find("\n## ", start + len(SECTION))) if e >= 0]
    end = min(ends) if ends else len(current)
    RESULTS.write_text(current[:start] + text.rstrip("\n") + "\n" + current[end:], encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 300_000])
    parser.add_argument("--extra-json", type=Path, help="JSON lines of sizes measured separately (e.g. 1M)")
    parser.add_argument("--search-one", type=int)
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    if args.search_one:
        print(json.dumps(run_search(args.search_one)))
        return
    fp = bench_fingerprint()
    rows = [json.loads(subprocess.run([sys.executable, __file__, "--search-one", str(n)], check=True,
                                      capture_output=True, text=True).stdout) for n in args.sizes]
    if args.extra_json:
        rows += [json.loads(line) for line in args.extra_json.read_text().splitlines() if line.strip()]
    rows.sort(key=lambda r: r["clips"])
    lines = [SECTION, "", f"`bench/bench_dedup.py` ({time.strftime('%Y-%m-%d')}; {machine_info()}).", "",
             (f"Fingerprinting: {fp['clips']} 10-s 160x120 H.264 clips in {fp['seconds']:.2f} s = "
              f"**{fp['clips_per_s']:.1f} clips/s** (decode + 2 fps sampling + 11 hashes per frame, one process)."), "",
             "Candidate search, synthetic clips (20 frames x 11 hashes, 1 % planted near-duplicates):", "",
             ("| clips | index hashes | queries | search s | s per (n log2 n / 1e6) | candidates | planted recall "
              "| inputs MiB | search peak MiB (tracemalloc) | process peak RSS MiB |"),
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        nlogn = r["clips"] * math.log2(r["clips"]) / 1e6
        lines.append(f"| {r['clips']:,} | {r['index_hashes']:,} | {r['queries']:,} | {r['seconds']:.1f} | "
                     f"{r['seconds'] / nlogn:.3f} | {r['candidates']:,} | {r['planted_recall']:.3f} | "
                     f"{r['inputs_mib']:.0f} | {r['search_peak_mib']:.0f} | {r['peak_rss_mib']:.0f} |")
    print("\n".join(lines))
    if args.write_results:
        write_section("\n".join(lines))


if __name__ == "__main__":
    main()
