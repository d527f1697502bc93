"""The peers' side of bench/bench_peer_dedup.py; runs in their own venv (videohash and vpdq), not ours.

Hashes each video with the peer's own API at its defaults and prints one JSON line: the seconds spent hashing
and, per video, videohash's 64-bit hash (as an integer) or vpdq's per-second features (hex PDQ hash, quality,
timestamp). Matching is done by the bench, with each peer's own rule.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def videohash_of(path: str, storage: str) -> int:
    from videohash import VideoHash

    video = VideoHash(path=path, storage_path=storage)
    try:
        return int(video.hash, 2)
    finally:
        video.delete_storage_path()


def vpdq_of(path: str) -> list[dict]:
    import vpdq

    return [{"hex": f.hex, "quality": f.quality, "t": f.timestamp}
            for f in vpdq.computeHash(path, seconds_per_hash=1.0, thread_count=1)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--method", choices=("videohash", "vpdq"), required=True)
    parser.add_argument("--paths", type=Path, required=True, help="JSON list of video paths")
    args = parser.parse_args()
    paths = json.loads(args.paths.read_text())
    with tempfile.TemporaryDirectory(prefix="peer-dedup-") as storage:
        started = time.perf_counter()
        hashes = [videohash_of(p, storage + "/") if args.method == "videohash" else vpdq_of(p) for p in paths]
        seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "hashes": hashes}))


if __name__ == "__main__":
    main()
