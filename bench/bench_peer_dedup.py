"""Dedup against videohash 3.0.1, vPDQ (vpdq 0.2.5) and a whole-video pHash baseline, on the planted sets.

The planted sets are the tests' own (tests/test_dedup_planted.py: crops, letterbox, mirrors, CRF 40, grades,
logos, 5-s sub-clips, a 100-s compilation; tests/test_dedup_planted_still.py: still slides, tripod shots, degraded
96x72 copies, compilations at arbitrary offsets, flat scenes that must stay apart), rendered and encoded the same
way. Truth: clips sharing >= 2 s of footage, transitively. Each method clusters by its own rule (connected
components of its matches):

- ours: `fingerprint_video` + `find_matches` + `clusters`, as the `duplicate_clusters` asset runs them;
- whole-video pHash: our frame sampler (2 fps), the mean of all frames, one 64-bit pHash (and its mirror);
  a pair matches within WHOLE_VIDEO_BITS bits;
- videohash: its 64-bit whole-video hash (a collage of 1-fps frames, wavelet hash); a pair matches as its
  `is_similar` says (Hamming distance <= ceil(15 % of 64) = 10 bits, videohash/videohash.py);
- vPDQ: PDQ hashes of one frame a second; as in ThreatExchange's matcher (matchTwoHash.cpp, and the 80 % query
  threshold python-threatexchange uses), frames of quality >= 50 match within < 31 of 256 bits, and a pair matches
  when >= 80 % of either clip's frames find a match in the other (a clip contained in the other counts).

Reports pairwise precision/recall per set, clips/s (hashing and matching, one process each), and per kind of
planted copy how many each method joins to their original.

The peers' venv (vpdq builds from source against FFmpeg's development libraries):

    apt-get install -y libavcodec-dev libavformat-dev libavdevice-dev libavutil-dev libswscale-dev \
        libswresample-dev libavfilter-dev
    python3.11 -m venv /tmp/peer-dedup-venv
    /tmp/peer-dedup-venv/bin/pip install videohash==3.0.1 vpdq==0.2.5 numpy==2.4.6 "pillow<10"  # videohash uses
        # Image.ANTIALIAS, gone in Pillow 10

    .venv/bin/python bench/bench_peer_dedup.py [--peer-python /tmp/peer-dedup-venv/bin/python] [--write-results]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from kinetics_assets.dedup import ClipItem, clusters, find_matches, fingerprint_video
from kinetics_assets.dedup.cluster import UnionFind
from kinetics_assets.dedup.fingerprint import hash_images, sample_frames
from resources.media_tools import ensure_ffmpeg_on_path
from resources.sandbox.render import encode_mp4

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(Path(__file__).parent)]
import test_dedup_planted as planted_moving  # noqa: E402
import test_dedup_planted_still as planted_still  # noqa: E402
from bench_sandbox import machine_info  # noqa: E402
from results_md import replace_section  # noqa: E402

SECTION = "## Dedup vs videohash, vPDQ and whole-video pHash"
CHILD = Path(__file__).with_name("peer_dedup_child.py")
WHOLE_VIDEO_BITS = 10
VIDEOHASH_BITS = 10  # is_similar: distance <= ceil(15 % of 64 bits)
VPDQ_DISTANCE, VPDQ_QUALITY, VPDQ_PERCENT = 31, 50, 80.0
METHODS = ("ours", "whole-video pHash", "videohash", "vPDQ")


def encoded_sets(folder: Path) -> dict[str, tuple[list, list[Path]]]:
    """Both planted sets, encoded as their tests encode them: (items, paths) per set."""
    moving = planted_moving.planted_set()
    still = planted_still.planted_set()
    (folder / "moving").mkdir()
    (folder / "still").mkdir()
    return {
        "planted (moving)": (moving, [encode_mp4(p.spec, folder / "moving" / f"{p.name}.mp4") for p in moving]),
        "planted (still, degraded)": (still, [planted_still.encode(c.frames(), c.transform,
                                                                   folder / "still" / f"{c.name}.mp4")
                                              for c in still]),
    }


def components(n: int, pairs) -> list[int]:
    uf = UnionFind(n)
    for a, b in pairs:
        uf.union(a, b)
    return [uf.find(k) for k in range(n)]


def ours(paths: list[Path]) -> tuple[list[int], float]:
    started = time.perf_counter()
    matches = find_matches([fingerprint_video(p) for p in paths])
    groups = clusters([ClipItem(p.stem) for p in paths], matches)
    seconds = time.perf_counter() - started
    return components(len(paths), [(g[0], k) for g in groups for k in g[1:]]), seconds


def whole_video_phash(paths: list[Path]) -> tuple[list[int], float]:
    """The simplest video hash: one pHash of the clip's mean frame (32x32 from our 96x96 samples)."""
    started = time.perf_counter()
    hashes = []
    for path in paths:
        _, frames, _ = sample_frames(path)
        mean = frames.astype(np.float32).mean(axis=0).reshape(32, 3, 32, 3).mean(axis=(1, 3))
        plain, mirrored = hash_images(mean)
        hashes.append((int(plain), int(mirrored)))
    pairs = [(i, j) for i in range(len(paths)) for j in range(i + 1, len(paths))
             if min(bin(hashes[i][0] ^ hashes[j][0]).count("1"), bin(hashes[i][0] ^ hashes[j][1]).count("1"))
             <= WHOLE_VIDEO_BITS]
    return components(len(paths), pairs), time.perf_counter() - started


def peer_hashes(python: str, method: str, paths: list[Path], folder: Path) -> tuple[list, float]:
    listing = folder / f"{method}-paths.json"
    listing.write_text(json.dumps([str(p) for p in paths]))
    env = {**os.environ, "PATH": f"{ensure_ffmpeg_on_path().parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run([python, str(CHILD), "--method", method, "--paths", str(listing)], capture_output=True,
                          text=True, env=env, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"{method} failed ({done.returncode}): {done.stderr[-2000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return report["hashes"], report["seconds"]


def videohash_components(hashes: list[int]) -> tuple[list[int], float]:
    started = time.perf_counter()
    pairs = [(i, j) for i in range(len(hashes)) for j in range(i + 1, len(hashes))
             if bin(hashes[i] ^ hashes[j]).count("1") <= VIDEOHASH_BITS]
    return components(len(hashes), pairs), time.perf_counter() - started


def vpdq_components(features: list[list[dict]]) -> tuple[list[int], float]:
    started = time.perf_counter()
    bits = [np.unpackbits(np.array([bytes.fromhex(f["hex"]) for f in clip if f["quality"] >= VPDQ_QUALITY],
                                   dtype="S32").view(np.uint8).reshape(-1, 32), axis=1) for clip in features]

    def share_found(a: np.ndarray, b: np.ndarray) -> float:
        """Percent of a's frames with a frame of b within the distance (matchTwoHash.cpp's findMatches)."""
        if not len(a) or not len(b):
            return 0.0
        distances = (a[:, None, :] != b[None, :, :]).sum(axis=2)
        return 100.0 * float((distances.min(axis=1) < VPDQ_DISTANCE).mean())

    pairs = [(i, j) for i in range(len(bits)) for j in range(i + 1, len(bits))
             if max(share_found(bits[i], bits[j]), share_found(bits[j], bits[i])) >= VPDQ_PERCENT]
    return components(len(bits), pairs), time.perf_counter() - started


def pair_sets(predicted: list[int], truth: list[int]) -> tuple[set, set]:
    n = len(truth)
    found = {(i, j) for i in range(n) for j in range(i + 1, n) if predicted[i] == predicted[j]}
    true = {(i, j) for i in range(n) for j in range(i + 1, n) if truth[i] == truth[j]}
    return found, true


def kind(name: str) -> str:
    """The planted case an item stands for: 'copy_crop15' -> 'copy crop15', 'slide2_tiny' -> 'slide copy' (the
    still set's copies are told apart by what they copy; its degradations are mixed across them)."""
    if name.startswith(("copy_", "sub_", "compilation")):
        return name.split("_")[0] if not name.startswith("copy_") else "copy " + name[len("copy_"):]
    base, _, transform = name.partition("_")
    return base.rstrip("0123456789") + (" copy" if transform else "")


def joined_to_originals(items: list, predicted: list[int]) -> dict[str, tuple[int, int]]:
    """Per kind of planted copy: (copies joined to the original they copy, copies), an original being the first
    item that shows all of a source."""
    originals = {}
    for k, item in enumerate(items):
        if len(item.footage) == 1 and item.footage[0][1] == 0:
            originals.setdefault(item.footage[0][0], k)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for k, item in enumerate(items):
        for source, *_ in item.footage:
            original = originals.get(source)
            if original is None or original == k:
                continue
            counts[kind(item.name)][1] += 1
            counts[kind(item.name)][0] += predicted[k] == predicted[original]
    return {name: (joined, total) for name, (joined, total) in sorted(counts.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--peer-python", default="/tmp/peer-dedup-venv/bin/python")
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-peer-dedup-") as tmp:
        started = time.perf_counter()
        sets = encoded_sets(Path(tmp))
        print(f"planted sets encoded in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        for set_name, (items, paths) in sets.items():
            truth = planted_moving.true_components(items)
            videohashes, videohash_s = peer_hashes(args.peer_python, "videohash", paths, Path(tmp))
            features, vpdq_s = peer_hashes(args.peer_python, "vpdq", paths, Path(tmp))
            runs = {"ours": ours(paths), "whole-video pHash": whole_video_phash(paths)}
            predicted, match_s = videohash_components(videohashes)
            runs["videohash"] = (predicted, videohash_s + match_s)
            predicted, match_s = vpdq_components(features)
            runs["vPDQ"] = (predicted, vpdq_s + match_s)
            for method, (predicted, seconds) in runs.items():
                found, true = pair_sets(predicted, truth)
                results[(set_name, method)] = {
                    "precision": len(found & true) / len(found) if found else 1.0,
                    "recall": len(found & true) / len(true) if true else 1.0,
                    "clips_per_s": len(paths) / seconds, "clips": len(paths),
                    "false": sorted(f"{items[i].name}~{items[j].name}" for i, j in found - true),
                    "kinds": joined_to_originals(items, predicted)}
                print(f"{set_name} {method}: precision {results[(set_name, method)]['precision']:.3f} recall "
                      f"{results[(set_name, method)]['recall']:.3f}, {len(paths) / seconds:.1f} clips/s",
                      file=sys.stderr)
    report = render(results, list(sets))
    print(report)
    if args.write_results:
        replace_section(SECTION, report)


def render(results: dict, set_names: list[str]) -> str:
    lines = [
        SECTION, "",
        f"`bench/bench_peer_dedup.py` ({datetime.date.today().isoformat()}; {machine_info()}). videohash 3.0.1 and "
        "vpdq 0.2.5 in their own venv (commands in the script's docstring), each at its defaults and with its own "
        "matching rule; pairwise precision/recall of the clusters against \"shares >= 2 s of footage\"; clips/s = "
        "clips / (hashing + matching), one process, on the tests' 10-s 160x120 clips (the compilations 60-100 s).",
        "",
        "| set | method | precision | recall | clips/s | false pairs |",
        "|---|---|---|---|---|---|",
    ]
    for set_name in set_names:
        for method in METHODS:
            r = results[(set_name, method)]
            shown = ", ".join(r["false"][:4]) + (f" (+{len(r['false']) - 4})" if len(r["false"]) > 4 else "")
            lines.append(f"| {set_name} ({r['clips']} clips) | {method} | {r['precision']:.3f} | {r['recall']:.3f} | "
                         f"{r['clips_per_s']:.1f} | {len(r['false'])}{': ' + shown if shown else ''} |")
    for method in METHODS[1:]:
        ratio = [results[(s, "ours")]["clips_per_s"] / results[(s, method)]["clips_per_s"] for s in set_names]
        lines.append("")
        lines.append(f"Speed ratio ours / {method}: " + ", ".join(f"{r:.2f}x" for r in ratio) + " (per set).")
        print(f"ratio ours/{method} clips/s: " + ", ".join(f"{r:.2f}x" for r in ratio), file=sys.stderr)
    lines += ["", "Copies joined to the original they copy, per planted kind:", "",
              "| set | kind | " + " | ".join(METHODS) + " |", "|---|---|" + "---|" * len(METHODS)]
    for set_name in set_names:
        for name, (_, total) in results[(set_name, "ours")]["kinds"].items():
            cells = [f"{results[(set_name, m)]['kinds'][name][0]}/{total}" for m in METHODS]
            lines.append(f"| {set_name} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
