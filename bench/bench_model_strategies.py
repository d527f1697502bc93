"""Benchmark the I3D checkpoint's two upstream uses against what runs by default (issue 13).

    .venv/bin/python bench/bench_model_strategies.py --home /tmp/demo [--videos 120] [--write-results]

`--home` is a KINETICS_HOME where `make demo` ran (it holds the benchmark's checkpoints, the accepted clips and the
sandbox world). Two measurements, with the sandbox's ground truth (read here, never by the pipeline):
- localization: on fresh sandbox videos (another seed than the demo's world), how often the `model` strategy's
  10-s window shows the action, against the `motion` strategy on the same videos;
- final filter: on the demo's crowd-accepted clips, how many the votes-only filter publishes and how many of
  those truly show their class, against votes + the model's score at several thresholds.
The checkpoint is the `all` partition's (the most training data).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import pandas as pd

from kinetics_assets.acquisition.localize import MotionStrategy, SourceVideo
from kinetics_assets.benchmark.run import BenchmarkRun
from kinetics_assets.benchmark.scoring import ClipScorer, ModelStrategy
from resources.sandbox.truth import MIN_ACTION_SHARE, GroundTruth
from resources.sandbox.world import DEMO_CLASSES, World, WorldConfig

sys.path.insert(0, str(Path(__file__).parent))
from bench_localizer import MIN_DURATION_S, action_cover, write_section  # noqa: E402
from bench_sandbox import machine_info  # noqa: E402

SECTION = "## I3D checkpoint upstream: model localizer and model filter"
THRESHOLDS = (0.05, 0.1, 0.2)


def checkpoint_of(home: Path) -> Path:
    found = sorted((home / "artifacts" / "benchmark" / "checkpoints").glob("*/all/run.json"))
    if not found:
        raise SystemExit(f"no trained 'all' checkpoint under {home}/artifacts/benchmark/checkpoints: run make demo")
    return found[-1].parent


def localization(run: BenchmarkRun, videos: int, seed: int, cache_dir: Path) -> dict:
    world = World(WorldConfig(seed=seed, classes=DEMO_CLASSES, relevant_per_class=videos // len(DEMO_CLASSES) * 2,
                              distractors_per_class=0, compilations_per_class=0, reupload_rate=0.0,
                              max_duration=120.0), cache_dir)
    truth = GroundTruth(world)
    records = [rec for rec in world.iter_records(kind="relevant") if rec.duration >= MIN_DURATION_S][:videos]
    motion, scorer = MotionStrategy(), ClipScorer(run)
    on: dict[str, list[bool]] = {"motion": [], "model": []}
    seconds = {"motion": 0.0, "model": 0.0}
    for rec in records:
        preview = world.media_path(rec.id, preview=True)
        source = SourceVideo(rec.id, world.metadata(rec.id).duration, lambda: av.open(str(preview)))
        for name, strategy in (("motion", motion), ("model", ModelStrategy(scorer, rec.label))):
            start = time.perf_counter()
            window = strategy.localize(source)
            seconds[name] += time.perf_counter() - start
            on[name].append(action_cover(truth, rec.id, window.start, window.end) >= MIN_ACTION_SHARE)
    return {"videos": len(records), "rates": {name: statistics.mean(v) for name, v in on.items()},
            "s_per_video": {name: s / len(records) for name, s in seconds.items()}}


def final_filter(run: BenchmarkRun, home: Path) -> pd.DataFrame:
    """Votes-only vs votes + model score on the demo's accepted, non-duplicate clips."""
    from resources.profiles import resources_for  # the demo's world and clip store, as the pipeline built them

    resources = resources_for()
    platform = resources["video_platform"]
    truth = GroundTruth(World(platform.world_config(), Path(platform.cache_dir)))
    final = pd.read_parquet(home / "assets" / "final_clips" / "_.parquet")
    kept = final[final["reason"] == ""].copy()
    scorer = ClipScorer(run)
    store = resources["clip_store"]
    kept["score"] = [scorer.clip_score(store.path(row.relpath), row.class_name) for row in kept.itertuples()]
    kept["of_class"] = [truth.label(row.youtube_id) == row.class_name for row in kept.itertuples()]
    rows = [("votes only", len(kept), kept["of_class"].mean())]
    for threshold in THRESHOLDS:
        passed = kept[kept["score"] >= threshold]
        rows.append((f"votes + model score >= {threshold:g}", len(passed),
                     passed["of_class"].mean() if len(passed) else float("nan")))
    return pd.DataFrame(rows, columns=["filter", "published", "share_truly_of_class"])


def section(loc: dict, filt: pd.DataFrame, command: str, machine: str, checkpoint: Path) -> str:
    return f"""{SECTION}

`{command}` ({time.strftime('%Y-%m-%d')}; {machine}). Checkpoint: the demo's `all` partition \
(`{checkpoint.relative_to(checkpoint.parents[2])}`, tiny configuration).

Localization, {loc['videos']} relevant sandbox videos of at least {MIN_DURATION_S} s (a world of another seed than \
the demo's); on-action = the action covers at least {MIN_ACTION_SHARE:.0%} of the window:

| strategy | on-action rate | seconds per video |
|---|---|---|
| motion (default) | {loc['rates']['motion']:.1%} | {loc['s_per_video']['motion']:.2f} |
| model | {loc['rates']['model']:.1%} | {loc['s_per_video']['model']:.2f} |

Final filter on the demo's crowd-accepted, non-duplicate clips (truly of class: the sandbox's ground truth):

{filt.to_markdown(index=False, floatfmt='.3f')}

Defaults stay as configured: `motion`, votes only (`ModelFilter.checkpoint` unset).
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--videos", type=int, default=120)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    import os

    os.environ["KINETICS_HOME"] = str(args.home)
    checkpoint = checkpoint_of(args.home)
    run = BenchmarkRun.load(checkpoint)
    machine = machine_info()
    filt = final_filter(run, args.home)
    with tempfile.TemporaryDirectory(prefix="bench-model-") as scratch:
        loc = localization(run, args.videos, args.seed, Path(scratch))
    command = " ".join([".venv/bin/python bench/bench_model_strategies.py"] + sys.argv[1:])
    text = section(loc, filt, command.replace(" --write-results", ""), machine, checkpoint)
    print(text)
    if args.write_results:
        write_section(text, SECTION)


if __name__ == "__main__":
    main()
