"""Candidate search vs faiss: which finds 64-bit hashes 8-14 bits away, how fast, in how much memory.

    .venv/bin/python bench/bench_dedup_faiss.py [--sizes 100000 1000000] [--queries 20000] [--methods NAME ...]

The same arrays go to both: an index of N random 64-bit hashes, and queries of which half are planted copies of
index hashes with 8-14 bits flipped (uniformly) and half random. Ours is ``search.candidate_pairs_from_arrays``
with its two tiers' parameters (long keys for moving footage; short keys for still shots); faiss's are
``IndexBinaryMultiHash`` (disjoint 16-bit substrings, multi-probe flips: exact up to nhash*(nflip+1)-1 bits) and
``IndexBinaryHash`` (one 16-bit key with flips), both ``range_search`` within 15 bits. faiss runs in a venv of its
own (created on first use under /tmp with ``uv``: faiss-cpu is no project dependency), each run in its own
process, so its peak RSS is its own. Recall = planted copies found; extra = other index hashes returned per query.
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

FAISS_VENV = Path("/tmp/dedup-faiss-venv")
RADIUS = 14
OURS = {"ours: 16 tables x 28 bits (moving tier)": dict(tables=16, bits=28),
        "ours: 64 tables x 16 bits (still tier)": dict(tables=64, bits=16),
        "ours: 160 tables x 16 bits": dict(tables=160, bits=16)}
FAISS = {"faiss MultiHash 4x16 bits, nflip 3": ("multi", 4, 16, 3),
         "faiss MultiHash 4x16 bits, nflip 2": ("multi", 4, 16, 2),
         "faiss IndexBinaryHash 16 bits, nflip 3": ("hash", 1, 16, 3)}


def arrays(n_index: int, n_queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(index hashes, query hashes, index position each planted query copies; -1 for random queries)."""
    rng = np.random.default_rng(seed)
    index = rng.integers(0, 2**63, size=n_index, dtype=np.uint64) ^ (rng.integers(0, 2, n_index, dtype=np.uint64) << 63)
    source = np.full(n_queries, -1, np.int64)
    source[: n_queries // 2] = rng.choice(n_index, n_queries // 2, replace=False)
    queries = rng.integers(0, 2**63, size=n_queries, dtype=np.uint64)
    for q in range(n_queries // 2):
        flips = rng.choice(64, size=int(rng.integers(8, RADIUS + 1)), replace=False)
        queries[q] = index[source[q]] ^ np.uint64(sum(1 << int(b) for b in flips))
    return index, queries, source


def run_ours(folder: Path, name: str) -> dict:
    from kinetics_assets.dedup.search import SearchParams, candidate_pairs_from_arrays

    index, queries, source = (np.load(folder / f"{k}.npy") for k in ("index", "queries", "source"))
    n = len(index)
    start = time.perf_counter()
    pairs = candidate_pairs_from_arrays(index, np.arange(n, dtype=np.int32), queries,
                                        n + np.arange(len(queries), dtype=np.int32), n + len(queries),
                                        SearchParams(radius=RADIUS, max_bucket=10**9, **OURS[name]))
    seconds = time.perf_counter() - start
    found = set(map(tuple, pairs.tolist()))
    return _score(name, seconds, [(int(s), n + q) in found for q, s in enumerate(source) if s >= 0], len(pairs))


def run_faiss(folder: Path, name: str) -> dict:
    import faiss

    kind, nhash, bits, nflip = FAISS[name]
    index, queries, source = (np.load(folder / f"{k}.npy") for k in ("index", "queries", "source"))
    as_bytes = lambda h: np.ascontiguousarray(h.astype(">u8")).view(np.uint8).reshape(-1, 8)  # noqa: E731
    start = time.perf_counter()
    built = faiss.IndexBinaryMultiHash(64, nhash, bits) if kind == "multi" else faiss.IndexBinaryHash(64, bits)
    built.nflip = nflip
    built.add(as_bytes(index))
    lims, _, ids = built.range_search(as_bytes(queries), RADIUS + 1)   # faiss: distance < radius
    seconds = time.perf_counter() - start
    hits = [s in set(ids[lims[q]:lims[q + 1]].tolist()) for q, s in enumerate(source) if s >= 0]
    return _score(name, seconds, hits, len(ids))


def _score(name: str, seconds: float, hits: list[bool], returned: int) -> dict:
    return {"method": name, "seconds": seconds, "recall": float(np.mean(hits)), "returned": returned,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def faiss_python() -> Path:
    python = FAISS_VENV / "bin" / "python"
    if not python.exists():
        uv = Path(sys.executable).with_name("uv")
        subprocess.run([str(uv), "venv", "-q", "-p", "3.11", str(FAISS_VENV)], check=True)
        subprocess.run([str(uv), "pip", "install", "-q", "-p", str(python), "faiss-cpu", "numpy"], check=True)
    return python


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument("--methods", nargs="*", help="a subset of the methods (default: all)")
    parser.add_argument("--one", nargs=2, metavar=("FOLDER", "METHOD"))
    args = parser.parse_args()
    if args.one:
        folder, name = Path(args.one[0]), args.one[1]
        print(json.dumps(run_ours(folder, name) if name in OURS else run_faiss(folder, name)))
        return
    repo = Path(__file__).resolve().parents[1]
    print(f"| index hashes | method | recall of 8-{RADIUS}-bit copies | search s | returned | peak RSS MiB |")
    print("|---|---|---|---|---|---|")
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            for key, value in zip(("index", "queries", "source"), arrays(size, args.queries)):
                np.save(Path(tmp) / f"{key}.npy", value)
            for name in args.methods or [*OURS, *FAISS]:
                python = sys.executable if name in OURS else str(faiss_python())
                out = subprocess.run([python, __file__, "--one", tmp, name], check=True, capture_output=True,
                                     text=True, cwd=repo, env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin"})
                r = json.loads(out.stdout)
                print(f"| {size:,} | {r['method']} | {r['recall']:.3f} | {r['seconds']:.2f} | {r['returned']:,} | "
                      f"{r['peak_rss_mib']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
