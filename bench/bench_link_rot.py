"""Benchmark a link-rot sensor tick on a synthetic release and history, and probe throughput under the budget.

    .venv/bin/python bench/bench_link_rot.py [--clips 65000 650000] [--write-results]

For each size: a roster of `clips` published clips over the 700 classes (the release's (label, youtube_id) pairs,
loaded from a parquet file as the sensor does once per release), a status for every video (3 % gone, 1 % suspect
with their confirmation due) and two sweeps of history rows (two answers per video). A tick is then
`link_rot_tick` with the default batch (re-probe the due suspects, advance the rotation, count every class's
available clips) against an instant platform, so the time is the tick's own bookkeeping; medians of several
ticks, and the peak of Python allocations during a tick (tracemalloc) beside the process's RSS. The probe
throughput is the sandbox's oEmbed probe through the shared SQLite rate budget at a given rate.
Target (issue 11): a tick under 5 s (Dagster's sensor timeout is 60 s), memory flat in the history size.
"""

from __future__ import annotations

import argparse
import datetime
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
from contextlib import closing
from pathlib import Path

import numpy as np
import pandas as pd

from kinetics_assets.editions.history import AvailabilityHistory
from kinetics_assets.editions.probe import platform_check, probe_videos
from kinetics_assets.editions.sensors import TICK_BREAKER, TICK_RETRY, RotationCursor, link_rot_tick, published_pairs
from kinetics_assets.editions.taxonomy import load_classes
from kinetics_assets.policy import CurationPolicy
from resources.ledgers import Ledgers
from resources.rate_limit import RateLimit
from resources.sandbox.resource import SandboxPlatform
from resources.sandbox.world import DEMO_CLASSES, World

sys.path.insert(0, str(Path(__file__).parent))
from bench_sandbox import machine_info

RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION = "## Link-rot sensor"
ALPHABET = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", dtype="S1")
NOW = datetime.datetime(2026, 6, 1, 12, tzinfo=datetime.UTC)
POLICY = CurationPolicy()
GONE_AFTER = datetime.timedelta(seconds=POLICY.gone_after_s)
TICKS = 7


def synthetic_release(path: Path, clips: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = ALPHABET[rng.integers(0, len(ALPHABET), size=(clips, 11))].view("S11").ravel().astype(str)
    classes = np.array(load_classes("Kinetics-700-2020"))
    release = pd.DataFrame({"label": classes[np.arange(clips) % len(classes)], "youtube_id": ids, "split": "train"})
    release.to_parquet(path, index=False, row_group_size=50_000)
    return release


def fill_history(db: Path, release: pd.DataFrame, seed: int = 0) -> None:
    """Two sweeps of answers per video and the statuses they fold to: 3 % gone, 1 % suspect and due."""
    rng = np.random.default_rng(seed + 1)
    draw = rng.random(len(release))
    status = np.where(draw < 0.03, "gone", np.where(draw < 0.04, "suspect", "available"))
    first, second = (NOW - 2 * GONE_AFTER).isoformat(), (NOW - GONE_AFTER).isoformat()
    since = np.where(status == "gone", first, np.where(status == "suspect", second, None))
    answer = np.where(status == "available", "available", "permanent")
    category = np.where(status == "available", None, "removed")
    with closing(sqlite3.connect(db)) as con, con:
        con.executemany("INSERT INTO video_status VALUES (?, ?, ?, ?, ?, ?)",
                        zip(release["youtube_id"], status, since, [second] * len(release), category, category))
        for at in (first, second):
            con.executemany("INSERT INTO availability_history VALUES (?, ?, ?, ?, ?)",
                            zip([at] * len(release), release["youtube_id"], answer, category, category))


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_tick(clips: int, folder: Path) -> dict:
    path = folder / f"release-{clips}.parquet"
    release = synthetic_release(path, clips)
    with AvailabilityHistory(folder / f"availability-{clips}.sqlite") as history:
        start = time.perf_counter()
        history.replace_roster("bench", published_pairs(str(path)))
        roster_s = time.perf_counter() - start
        fill_history(history.path, release)
        del release
        cursor, times, peaks = RotationCursor(), [], []
        for _ in range(TICKS):
            tracemalloc.start()
            start = time.perf_counter()
            tick = link_rot_tick(history, cursor, "bench", lambda video_id: None, now=NOW,
                                 batch=POLICY.link_rot_batch, minimum=POLICY.minimum_clips_per_class,
                                 gone_after=GONE_AFTER)
            times.append(time.perf_counter() - start)
            peaks.append(tracemalloc.get_traced_memory()[1] / 2**20)
            tracemalloc.stop()
            cursor = tick.cursor
        db_mib = sum(p.stat().st_size for p in folder.glob(f"availability-{clips}.sqlite*")) / 2**20
    return {"clips": clips, "roster_s": roster_s, "tick_s": statistics.median(times), "tick_max_s": max(times),
            "peak_mib": max(peaks), "rss_mib": rss_mib(), "db_mib": db_mib, "probed": len(tick.probed.answers),
            "deficits": len(tick.deficits)}


def bench_probes(folder: Path, rate: float, videos: int) -> dict:
    platform = SandboxPlatform(classes=list(DEMO_CLASSES[:4]), relevant_per_class=videos // 4, distractors_per_class=0,
                               cache_dir=str(folder / "world"))
    world = World(platform.world_config(), folder / "world")
    ids = [record.id for record in world.iter_records(kind="relevant")][:videos]
    ledgers = Ledgers(root=str(folder / "ledgers"))
    bucket = RateLimit(ledgers=ledgers, budget="bench", rate_per_s=rate, burst=1).bucket()
    with ledgers.availability_history() as history:
        start = time.perf_counter()
        probed = probe_videos(ids, platform_check(platform, bucket.acquire), history, gone_after=GONE_AFTER,
                              retry=TICK_RETRY, breaker=TICK_BREAKER, now=lambda: NOW)
        wall = time.perf_counter() - start
    platform.shutdown()
    answers = pd.Series([answer.answer for answer in probed.answers]).value_counts().to_dict()
    return {"rate": rate, "videos": len(probed.answers), "wall_s": wall, "per_s": len(probed.answers) / wall,
            "answers": answers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, nargs="+", default=[65_000, 650_000])
    parser.add_argument("--probe-rate", type=float, default=20.0)
    parser.add_argument("--probe-videos", type=int, default=200)
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    info = machine_info()
    rows = []
    with tempfile.TemporaryDirectory(dir="/tmp") as folder:
        for clips in sorted(args.clips):
            result = bench_tick(clips, Path(folder))
            rows.append(f"| {clips:,} | {2 * clips:,} | {result['db_mib']:.0f} | {result['roster_s']:.1f} | "
                        f"{result['tick_s']:.2f} | {result['tick_max_s']:.2f} | {result['peak_mib']:.2f} | "
                        f"{result['rss_mib']:.0f} | {result['probed']} | {result['deficits']} |")
            print(rows[-1], flush=True)
        probes = bench_probes(Path(folder), args.probe_rate, args.probe_videos)
        print(probes, flush=True)
    if args.write_results:
        text = "\n".join([
            "", SECTION, "",
            f"`bench/bench_link_rot.py --clips {' '.join(map(str, sorted(args.clips)))}` "
            f"({time.strftime('%Y-%m-%d')}; {info}).", "",
            "A tick = `link_rot_tick` with the default batch "
            f"({POLICY.link_rot_batch} videos: the due suspects first, then the rotation) against an instant "
            "platform, then every class's available count; median and max of "
            f"{TICKS} ticks. Peak = Python allocations during a tick (tracemalloc); RSS = the process's peak so "
            "far (sizes run in ascending order in one process, so it includes the synthetic data's build). "
            "Roster = loading the release's (label, youtube_id) pairs from parquet into the history, once per "
            "release.", "",
            "| published clips | history rows | history MiB | roster load s | tick s (median) | tick s (max) | "
            "tick peak MiB | process RSS MiB | probed per tick | classes under the minimum |",
            "|---|---|---|---|---|---|---|---|---|---|", *rows, "",
            f"Probe throughput: {probes['videos']} sandbox videos probed (oEmbed, full check when ambiguous) "
            f"through a shared SQLite budget of {probes['rate']:g} requests/s (burst 1) in {probes['wall_s']:.1f} s "
            f"= {probes['per_s']:.1f} videos/s; answers {probes['answers']}.", ""])
        RESULTS.write_text(RESULTS.read_text(encoding="utf-8").rstrip("\n") + "\n" + text, encoding="utf-8")


if __name__ == "__main__":
    main()
