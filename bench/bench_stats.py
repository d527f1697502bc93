"""Benchmark `kinetics stats` on a large annotation CSV: peak RSS and wall time of the command.

    .venv/bin/python bench/bench_stats.py [--rows 1000000 5000000] [--write-results]

The CSV is generated in /tmp (Kinetics-400 labels, unique random ids, 1 % exact duplicate rows, 1 % rows with a
bad id, train/val/test splits): about 40 bytes a line, so 5M rows is about 200 MB, the size the issue measured
(issue 10: 5.1 GB peak before streaming; goal <= 1 GB). The command runs in its own process, so the peak RSS
reported (getrusage of the child, one process per size) is the command's own.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from kinetics_assets.editions.taxonomy import load_classes

sys.path.insert(0, str(Path(__file__).parent))
from bench_sandbox import machine_info

RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION = "## Stats memory"
ID_ALPHABET = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", dtype="S1")
CHUNK = 500_000


def write_csv(path: Path, rows: int, seed: int = 0) -> None:
    """`rows` data lines in chunks (the generator's own memory stays small)."""
    rng = np.random.default_rng(seed)
    classes = np.array(load_classes("Kinetics-400"), dtype=object)
    splits = np.array(["train", "val", "test"], dtype=object)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write("label,youtube_id,time_start,time_end,split,is_cc\n")
        for offset in range(0, rows, CHUNK):
            n = min(CHUNK, rows - offset)
            ids = ID_ALPHABET[rng.integers(0, len(ID_ALPHABET), size=(n, 11))].view("S11").ravel().astype(str)
            ids = ids.astype(object)
            bad = rng.random(n) < 0.01
            ids[bad] = "bad id!"
            starts = rng.integers(0, 600, size=n)
            lines = (classes[rng.integers(0, len(classes), size=n)] + "," + ids + ","
                     + starts.astype(str).astype(object) + "," + (starts + 10).astype(str).astype(object) + ","
                     + splits[rng.choice(3, size=n, p=[0.8, 0.1, 0.1])] + ","
                     + rng.integers(0, 2, size=n).astype(str).astype(object))
            repeat = np.flatnonzero(rng.random(n) < 0.01)[1:]
            lines[repeat] = lines[repeat - 1]  # an exact copy of the line before (unless that one is a copy too)
            handle.write("\n".join(lines) + "\n")


def run_stats(path: Path) -> dict:
    command = [str(Path(sys.executable).with_name("kinetics")), "stats", str(path), "--edition", "Kinetics-400"]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"stats failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the largest child so far: sizes ascend
    summary = next(line for line in done.stdout.splitlines() if line.startswith("Rejected rows"))
    return {"wall_s": wall, "peak_rss_mib": peak_kib / 1024, "summary": summary,
            "command": " ".join(["kinetics", *command[1:]])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    info = machine_info()
    lines = []
    with tempfile.TemporaryDirectory(dir="/tmp") as folder:
        path = Path(folder) / "annotations.csv"
        for rows in sorted(args.rows):
            write_csv(path, rows)
            size_mb = path.stat().st_size / 1e6
            result = run_stats(path)
            lines.append(f"| {rows:,} | {size_mb:.0f} | {result['peak_rss_mib']:.0f} | {result['wall_s']:.1f} | "
                         f"{result['summary']} |")
            print(lines[-1], flush=True)
    if args.write_results:
        command = result["command"].replace(str(path), "/tmp/.../annotations.csv")
        text = "\n".join([
            "", SECTION, "",
            f"`bench/bench_stats.py --rows {' '.join(map(str, sorted(args.rows)))}` ({time.strftime('%Y-%m-%d')}; "
            f"{info}); command measured: `{command}`.", "",
            "| rows | CSV MB | peak RSS MiB | wall s | summary |", "|---|---|---|---|---|", *lines, ""])
        RESULTS.write_text(RESULTS.read_text(encoding="utf-8").rstrip("\n") + "\n" + text, encoding="utf-8")


if __name__ == "__main__":
    main()
