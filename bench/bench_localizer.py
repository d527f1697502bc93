"""Benchmark the localizer: how often its 10-s window shows the action, against fixed windows.

    .venv/bin/python bench/bench_localizer.py [--videos 300 --max-duration 120 --seed 7] [--write-results]

Sandbox videos of the demo classes (relevant ones, at least 20 s long, so that a window can miss the action)
are rendered with the sandbox's footage (camera shake and pans, scene cuts, moving backgrounds, title cards,
captions); each strategy picks a window from the low-resolution rendition exactly as the pipeline does, and the
sandbox's ground truth (read here, never by the pipeline) says whether the action covers at least half of it.
Baselines: the video's first 10 s, its middle 10 s, and a random window (the share of all whole-second windows
that are on the action). With --write-results the table replaces the "Localizer" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import math
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av

from kinetics_assets.acquisition.localize import CLIP_SECONDS, FixedStrategy, MotionStrategy, SourceVideo
from resources.sandbox.truth import MIN_ACTION_SHARE, GroundTruth
from resources.sandbox.world import DEMO_CLASSES, World, WorldConfig

sys.path.insert(0, str(Path(__file__).parent))
from bench_sandbox import machine_info  # noqa: E402

RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION = "## Localizer"
MIN_DURATION_S = 2 * CLIP_SECONDS


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def action_cover(truth: GroundTruth, video_id: str, start: float, end: float) -> float:
    """Share of [start, end) that shows the action."""
    return sum(max(0.0, min(end, b) - max(start, a)) for a, b in truth.action_segments(video_id)) / (end - start)


def random_window_rate(truth: GroundTruth, video_id: str, duration: float) -> float:
    """What a window at a random whole-second start gets: the share of such windows that show the action."""
    starts = range(math.floor(duration) - CLIP_SECONDS + 1)
    return statistics.mean(action_cover(truth, video_id, s, s + CLIP_SECONDS) >= MIN_ACTION_SHARE for s in starts)


def middle_strategy(duration: float) -> FixedStrategy:
    return FixedStrategy(offset_s=max(0, math.floor(duration / 2) - CLIP_SECONDS // 2))


def run(videos: int, max_duration: float, seed: int, cache_dir: Path) -> dict:
    per_class = math.ceil(videos / len(DEMO_CLASSES) / 0.6)  # about 30 % of the videos are under 20 s
    world = World(WorldConfig(seed=seed, classes=DEMO_CLASSES, relevant_per_class=per_class,
                              distractors_per_class=0, compilations_per_class=0, reupload_rate=0.0,
                              max_duration=max_duration), cache_dir)
    truth = GroundTruth(world)
    records = [rec for rec in world.iter_records(kind="relevant") if rec.duration >= MIN_DURATION_S][:videos]
    if len(records) < videos:
        raise RuntimeError(f"the bench world holds only {len(records)} videos of {MIN_DURATION_S} s or more")
    covers: dict[str, list[float]] = {"motion": [], "first 10 s": [], "middle 10 s": []}
    random_rates, motion_cpu, render_s = [], 0.0, 0.0
    motion = MotionStrategy()
    for rec in records:
        start = time.perf_counter()
        preview = world.media_path(rec.id, preview=True)
        render_s += time.perf_counter() - start
        duration = world.metadata(rec.id).duration
        source = SourceVideo(rec.id, duration, lambda: av.open(str(preview)))
        before = cpu_s()
        window = motion.localize(source)
        motion_cpu += cpu_s() - before
        for name, strategy in (("motion", None), ("first 10 s", FixedStrategy()),
                               ("middle 10 s", middle_strategy(duration))):
            chosen = window if strategy is None else strategy.localize(source)
            covers[name].append(action_cover(truth, rec.id, chosen.start, chosen.end))
        random_rates.append(random_window_rate(truth, rec.id, duration))
    seconds = sum(rec.duration for rec in records)
    action_share = [(rec.action_end - rec.action_start) / rec.duration for rec in records]
    return {"videos": len(records), "video_s": seconds, "render_s": render_s,
            "motion_cpu_ms_per_video_min": 1000 * motion_cpu / (seconds / 60),
            "median_duration": statistics.median(rec.duration for rec in records),
            "median_action_share": statistics.median(action_share),
            "rates": {name: statistics.mean(c >= MIN_ACTION_SHARE for c in cs) for name, cs in covers.items()}
            | {"random window": statistics.mean(random_rates)},
            "median_cover": {name: statistics.median(cs) for name, cs in covers.items()}}


def section(result: dict, command: str, machine: str) -> str:
    rates, motion = result["rates"], result["rates"]["motion"]
    rows = "\n".join(
        f"| {name} | {rate:.1%} | {result['median_cover'].get(name, float('nan')):.0%} | "
        f"{'' if name == 'motion' else f'{motion / rate:.2f}x' if rate else 'n/a'} |"
        for name, rate in rates.items()).replace("| nan% |", "| - |")
    return f"""{SECTION}

`{command}` ({time.strftime('%Y-%m-%d')}; {machine}).
{result['videos']} relevant sandbox videos of the 12 demo classes, at least {MIN_DURATION_S} s long (median \
{result['median_duration']:.0f} s, {result['video_s'] / 60:.0f} min in all; the action covers a median \
{result['median_action_share']:.0%} of its video), rendered with camera shake and pans, scene cuts, moving \
backgrounds, title cards and captions around the action. On-action = the action covers at least \
{MIN_ACTION_SHARE:.0%} of the 10-s window (ground truth from `resources/sandbox/truth.py`).

| strategy | on-action rate | median share of the window on the action | motion / strategy |
|---|---|---|---|
{rows}

Motion strategy cost: {result['motion_cpu_ms_per_video_min']:.0f} ms CPU per minute of video (preview decode at \
4 samples/s and scoring); rendering the previews took {result['render_s']:.0f} s.
"""


def write_section(text: str, section: str = SECTION) -> None:
    """Replace (or append) a section (the Localizer's) of RESULTS.md, keeping the others."""
    current = RESULTS.read_text(encoding="utf-8")
    start = current.find(section + "\n")
    if start >= 0:
        end = current.find("\n## ", start + len(section))
        current = current[:start] + (current[end + 1:] if end >= 0 else "")
    RESULTS.write_text(current.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=300)
    parser.add_argument("--max-duration", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cache-dir", type=Path, default=None, help="Reuse rendered previews between runs.")
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    machine = machine_info()
    with tempfile.TemporaryDirectory(prefix="bench-localizer-") as scratch:
        result = run(args.videos, args.max_duration, args.seed, args.cache_dir or Path(scratch))
    print(result, flush=True)
    command = " ".join([".venv/bin/python bench/bench_localizer.py"] + sys.argv[1:])
    text = section(result, command.replace(" --write-results", ""), machine)
    print(text)
    if args.write_results:
        write_section(text)


if __name__ == "__main__":
    main()
