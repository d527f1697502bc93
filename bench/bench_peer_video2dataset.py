"""Acquisition against video2dataset 1.3.0: the same sandbox videos and 10-s windows, clips of the same size.

Ours: `acquire_clips` on annotated windows (the `kinetics download` path: metadata request through our yt-dlp
extractor, yt-dlp section download with ffmpeg cutting and normalizing in one pass, verification, atomic store,
ledger). Theirs: `video2dataset` with its download worker (bench/peer_video2dataset_child.py, in its own venv):
yt-dlp downloads the whole video, ClippingSubsampler `precision: exact` re-encodes it cut at the window,
ResolutionSubsampler scales the clip to short side 256. video2dataset cannot be given a yt-dlp extractor (it
builds its own YoutubeDL from URLs), and our watch URLs are understood only by our registered extractor, so it
gets the sandbox's direct media URL of the same 480x360 rendition (with a query string, so that video2dataset
hands it to yt-dlp, whose generic extractor downloads it, rather than to its plain HTTP fetcher).

Reports clips/min (median of interleaved runs, ratio ours/theirs), CPU per clip (client, ffmpeg and the
in-process sandbox server), frames per clip and cut accuracy (each clip's first and last frame matched against
the decoded source), and what each does on a removed video.

video2dataset's venv (its pins are old: torch 2.1.2, transformers, numpy<2; the download-and-clip path needs
none of the ML stack, and runs with numpy 2):

    python3.11 -m venv /tmp/v2d-venv
    /tmp/v2d-venv/bin/pip install --no-deps video2dataset==1.3.0
    /tmp/v2d-venv/bin/pip install numpy==2.4.6 pandas pyarrow fsspec "fire<0.6" omegaconf requests \
        ffmpeg-python yt-dlp==2026.10.26 webvtt-py tqdm timeout-decorator webdataset braceexpand pyyaml

    .venv/bin/python bench/bench_peer_video2dataset.py [--v2d-python /tmp/v2d-venv/bin/python] [--workers 2]
        [--repeats 3] [--write-results]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from kinetics_assets.acquisition.clips import ClipFormat, ClipRequest, acquire_clips
from kinetics_assets.acquisition.ledger import ClipLedger
from kinetics_assets.acquisition.localize import MotionStrategy
from resources.clip_store import LocalClipStore
from resources.media_tools import ensure_ffmpeg_on_path, user_cache_dir
from resources.sandbox.resource import SandboxPlatform
from resources.sandbox.server import media_url
from resources.sandbox.world import DEMO_CLASSES
from resources.token_bucket import TokenBucket

sys.path.insert(0, str(Path(__file__).parent))
from bench_sandbox import machine_info  # noqa: E402
from results_md import replace_section  # noqa: E402

SECTION = "## Acquisition vs video2dataset"
CHILD = Path(__file__).with_name("peer_video2dataset_child.py")
CLIP_S = 10
WORLD = {"classes": list(DEMO_CLASSES[:3]), "relevant_per_class": 6, "distractors_per_class": 0,
         "compilations_per_class": 0, "reupload_rate": 0.0, "width": 480, "height": 360, "max_duration": 40,
         "annual_removal_rate": 0.03}  # a few removed: one is the failure case
MATCH_SIZE = (64, 48)  # frames compared at this size (gray), enough to tell neighbouring frames of moving footage


def cpu_s() -> float:
    """CPU seconds of this process (the in-process sandbox server included) and its waited-for children (ffmpeg,
    video2dataset's process and its workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_ours(platform: SandboxPlatform, windows: dict[str, tuple[int, int]], workers: int, root: Path
             ) -> tuple[float, float, dict[str, dict]]:
    """Seconds and CPU seconds of one acquisition run into a fresh store; per video its clip or failure."""
    requests = [ClipRequest(video, time_start=start, time_end=end) for video, (start, end) in windows.items()]
    with ClipLedger(root / "ledger.sqlite") as ledger:
        started, cpu = time.perf_counter(), cpu_s()
        outcomes = acquire_clips(platform, requests, LocalClipStore(root=str(root)), ledger, MotionStrategy(),
                                 rate_limit=TokenBucket(rate_per_s=1000.0, burst=100), concurrency=workers,
                                 clip_format=ClipFormat())
        seconds, cpu = time.perf_counter() - started, cpu_s() - cpu
    return seconds, cpu, {o.youtube_id: {"status": o.status, "error": o.message, "category": o.category,
                                         "clip": str(root / o.relpath) if o.relpath else None} for o in outcomes}


def run_theirs(v2d_python: str, base_url: str, windows: dict[str, tuple[int, int]], workers: int, root: Path
               ) -> tuple[float, float, dict[str, dict]]:
    """Seconds (of the video2dataset call, not the interpreter start) and CPU seconds (all of it, the
    interpreter's start included) of one video2dataset run; per video its clip or what it recorded."""
    urls = {f"{media_url(base_url, video)}?from=video2dataset": video for video in windows}
    root.mkdir(parents=True, exist_ok=True)
    job = root / "job.json"
    job.write_text(json.dumps([{"url": url, "start": windows[v][0], "end": windows[v][1]} for url, v in urls.items()]))
    env = {**os.environ, "PATH": f"{ensure_ffmpeg_on_path().parent}{os.pathsep}{os.environ['PATH']}"}
    cpu = cpu_s()
    done = subprocess.run([v2d_python, str(CHILD), "--job", str(job), "--out", str(root / "out"),
                           "--workers", str(workers)], capture_output=True, text=True, env=env, timeout=1800)
    cpu = cpu_s() - cpu
    if done.returncode != 0:
        raise RuntimeError(f"video2dataset run failed ({done.returncode}): {done.stderr[-2000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return report["seconds"], cpu, {urls[url]: outcome for url, outcome in report["outcomes"].items()}


def gray_frames(path: Path) -> np.ndarray:
    """Every frame of the video, gray, at MATCH_SIZE, in decoding order."""
    with av.open(str(path)) as container:
        return np.stack([frame.reformat(*MATCH_SIZE, format="gray").to_ndarray().astype(np.float32)
                         for frame in container.decode(video=0)])


def clip_accuracy(clip: Path, source: np.ndarray, start: int, end: int, fps: int) -> dict:
    """Frames, size and rate of the clip, and where it starts and ends against the window, in source frames:
    the clip's whole frame sequence is aligned with the source at every shift within a second of the window's
    first frame (mean absolute difference; one frame alone could match a look-alike frame of a still shot)."""
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        size, rate = (stream.codec_context.width, stream.codec_context.height), float(stream.average_rate)
    frames = gray_frames(clip)
    first = start * fps

    def misfit(shift: int) -> float:
        index = first + shift + np.arange(len(frames))
        inside = (index >= 0) & (index < len(source))
        if inside.mean() < 0.8:
            return float("inf")
        return float(np.abs(source[index[inside]] - frames[inside]).mean())

    shift = min(range(-fps, fps + 1), key=misfit)
    return {"frames": len(frames), "size": size, "fps": rate, "start_offset": shift,
            "end_offset": shift + len(frames) - (end - start) * fps}


def failure_case(platform: SandboxPlatform, v2d_python: str, video: str, workers: int) -> dict[str, dict]:
    """What each records for one removed video (both run it alone)."""
    window = {video: (0, CLIP_S)}
    with tempfile.TemporaryDirectory(prefix="bench-v2d-fail-") as tmp:
        ours = run_ours(platform, window, workers, Path(tmp) / "ours")[2][video]
        theirs = run_theirs(v2d_python, platform.server.base_url, window, workers, Path(tmp) / "theirs")[2].get(
            video, {"status": "no record", "error": "video2dataset wrote no sample for the URL"})
    return {"ours": ours, "theirs": theirs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--v2d-python", default="/tmp/v2d-venv/bin/python")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()

    platform = SandboxPlatform(**WORLD, cache_dir=str(user_cache_dir() / "bench-peer-video2dataset"))
    try:
        world, clock = platform.server.world, platform.server.clock
        records = [r for r in world.iter_records(kind="relevant") if r.duration >= CLIP_S + 2]
        available = [r for r in records if world.availability(r.id, clock).available]
        removed = next(r.id for r in records if not world.availability(r.id, clock).available)
        windows = {r.id: (int(r.duration - CLIP_S) // 2, int(r.duration - CLIP_S) // 2 + CLIP_S) for r in available}
        started = time.perf_counter()
        media = {video: world.media_path(video) for video in windows}  # rendered once, cached: not measured
        print(f"{len(windows)} videos ready in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        load = [os.getloadavg()[0]]
        samples, last = [], {}
        with tempfile.TemporaryDirectory(prefix="bench-v2d-") as tmp:
            for repeat in range(args.repeats + 1):  # the first pair warms caches and is not counted
                ours = run_ours(platform, windows, args.workers, Path(tmp) / f"ours{repeat}")
                theirs = run_theirs(args.v2d_python, platform.server.base_url, windows, args.workers,
                                    Path(tmp) / f"theirs{repeat}")
                print(f"run {repeat}: ours {ours[0]:.1f} s, video2dataset {theirs[0]:.1f} s", file=sys.stderr)
                for tool, (*_, found) in (("ours", ours), ("video2dataset", theirs)):
                    missing = {v: found.get(v, {}).get("error") for v in windows if not found.get(v, {}).get("clip")}
                    if missing:
                        raise RuntimeError(f"{tool} made no clip of {len(missing)} videos: {list(missing.items())[:3]}")
                if repeat:
                    samples.append((ours[:2], theirs[:2]))
                last = {"ours": ours[2], "theirs": theirs[2]}
            load.append(os.getloadavg()[0])
            quality = {}
            for video, (start, end) in windows.items():
                source = gray_frames(media[video])
                quality[video] = {tool: clip_accuracy(Path(found[video]["clip"]), source, start, end,
                                                      world.record(video).fps)
                                  for tool, found in last.items() if found.get(video, {}).get("clip")}
        failure = failure_case(platform, args.v2d_python, removed, args.workers)
    finally:
        platform.shutdown()
    report = render(windows, samples, quality, failure, args, load)
    print(report)
    if args.write_results:
        replace_section(SECTION, report)


def summary(quality: dict, tool: str, clips: int) -> dict:
    mine = [q[tool] for q in quality.values() if tool in q]
    return {"made": len(mine), "of": clips, "frames": sorted({q["frames"] for q in mine}),
            "sizes": sorted({f"{w}x{h}" for w, h in (q["size"] for q in mine)}),
            "fps": sorted({round(q["fps"], 2) for q in mine}),
            "exact_start": sum(q["start_offset"] == 0 for q in mine),
            "exact_end": sum(q["end_offset"] == 0 for q in mine),
            "worst": max((max(abs(q["start_offset"]), abs(q["end_offset"])) for q in mine), default=0)}


def render(windows: dict, samples: list, quality: dict, failure: dict, args, load: list[float]) -> str:
    clips = len(windows)
    rate = {tool: statistics.median(60.0 * clips / s[i][0] for s in samples) for i, tool in enumerate(("ours", "theirs"))}
    cpu = {tool: statistics.median(1000.0 * s[i][1] / clips for s in samples) for i, tool in enumerate(("ours", "theirs"))}
    stats = {tool: summary(quality, tool, clips) for tool in ("ours", "theirs")}
    lines = [
        SECTION, "",
        f"`bench/bench_peer_video2dataset.py --workers {args.workers} --repeats {args.repeats}` "
        f"({datetime.date.today().isoformat()}; {machine_info()}).",
        (f"{clips} sandbox videos (480x360 H.264 25 fps, 12-40 s), one 10-s window each (integer seconds, the "
         f"video's middle), {args.workers} downloads at once in both; medians of {args.repeats} interleaved runs "
         "after a warm-up pair. Output in both: H.264 clips, short side 256, 25 fps. video2dataset 1.3.0 in its own "
         "venv (install commands in the script's docstring), yt-dlp 2026.10.26 and the same ffmpeg in both."),
        "",
        "| | clips/min | CPU ms/clip | clips made | frames per clip | size | fps | first frame exact | last frame exact | worst offset (frames) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for tool, name in (("ours", "ours (`acquire_clips`)"), ("theirs", "video2dataset")):
        s = stats[tool]
        lines.append(f"| {name} | {rate[tool]:.0f} | {cpu[tool]:.0f} | {s['made']}/{s['of']} | "
                     f"{', '.join(map(str, s['frames']))} | {', '.join(s['sizes'])} | {', '.join(map(str, s['fps']))} | "
                     f"{s['exact_start']}/{s['made']} | {s['exact_end']}/{s['made']} | {s['worst']} |")
    ratio = rate["ours"] / rate["theirs"]
    lines += [
        "",
        f"**Ratio ours / video2dataset: {ratio:.2f}x clips/min** (target >= 1.5x at equal cut accuracy), "
        f"{cpu['theirs'] / cpu['ours']:.2f}x less CPU per clip. Load average {load[0]:.1f} before, {load[-1]:.1f} "
        "after (shared machine).",
        "",
        "On a removed video (the platform answers its player API with the removal reason and its media with 403):",
        f"- ours: `{failure['ours']['status']}` ({failure['ours'].get('category')}): {failure['ours']['error']}",
        f"- video2dataset: `{failure['theirs'].get('status')}`: {failure['theirs'].get('error')}",
    ]
    print(f"ratio ours/video2dataset: {ratio:.2f}x clips/min", file=sys.stderr)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
