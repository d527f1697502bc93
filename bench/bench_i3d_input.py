"""Benchmark the I3D training input (32x224x224, random window, crop and flip) against plain decode-and-crop
loaders on the same clips and the same windows.

    .venv/bin/python bench/bench_i3d_input.py [--clips 12] [--examples 48] [--runs 3] [--work /tmp/bench-i3d]

Clips: synthetic 10-s H.264 clips at 25 fps, 340x256 (short side 256), crf 23, preset veryfast, default GOP
(one keyframe per 10-s clip, as the clip store's encodes), textured content moving every frame so they
compress like video rather than like flat colour. They are laid out as a release's train split and sharded
with the production spec (``ShardSpec()``: 25 fps, short side 256, JPEG quality 90).
Loaders, each in ONE process and thread, each producing the same ``examples`` views (``train_view``):
- shards: ``train_batches`` (ArrayRecord record read + 32 JPEG decodes + crop + flip), batches of 8;
- PyAV: open the mp4, seek to the window's start (lands on the keyframe before it), decode to the window's
  end, convert the 32 frames to RGB, crop, flip;
- decord (if importable): ``VideoReader.get_batch`` of the 32 indices, crop, flip.
Medians of ``runs`` interleaved runs: clips/s (wall) and CPU ms per clip (process time: on a shared machine the
steadier measure of what each loader costs). Target (issue 13): shards >= 2x PyAV.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import av
import numpy as np
from matplotlib import cbook
from PIL import Image

from kinetics_assets.benchmark.input_pipeline import PRODUCTION, looped, step_examples, train_batches, train_view
from kinetics_assets.benchmark.shards import build_shards

sys.path.insert(0, str(Path(__file__).parent))
from bench_sandbox import machine_info

BATCH = 8
SEED = 0
WIDTH, HEIGHT, FRAMES, FPS = 340, 256, 250, 25


def write_clip(path: Path, seed: int) -> None:
    """A 10-s clip of a photograph (matplotlib's sample, in the venv) seen by a camera that pans and zooms along
    a random path, with sensor noise (sigma 3) and a bright disc moving over it: natural image statistics for
    the JPEG side, every frame changing for the H.264 side."""
    rng = np.random.default_rng(seed)
    photo = Image.open(cbook.get_sample_data("grace_hopper.jpg")).convert("RGB")
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    x0, y0 = rng.uniform(0, photo.width - 300), rng.uniform(0, photo.height - 230)
    vx, vy, zoom = rng.uniform(-0.6, 0.6), rng.uniform(-0.4, 0.4), rng.uniform(-0.002, 0.002)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"crf": "23", "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for k in range(FRAMES):
            scale = 1 + zoom * k
            left = float(np.clip(x0 + vx * k, 0, photo.width - 300 * scale))
            top = float(np.clip(y0 + vy * k, 0, photo.height - 226 * scale))
            view = photo.resize((WIDTH, HEIGHT), Image.BILINEAR, box=(left, top, left + 300 * scale, top + 226 * scale))
            frame = np.clip(np.asarray(view, dtype=np.float32) + rng.normal(0, 3, (HEIGHT, WIDTH, 1)), 0, 255)
            frame[(yy - 128 - 60 * np.sin(k / 20)) ** 2 + (xx - 20 - k) ** 2 < 900] = 255
            image = av.VideoFrame.from_ndarray(frame.astype(np.uint8), format="rgb24")
            for packet in stream.encode(image):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def synthetic_release(root: Path, clips: int) -> Path:
    """``clips`` clips in two classes, with the files the shard builder reads (made once, then reused)."""
    if (root / "manifest.json").is_file():
        return root
    lines = []
    for i in range(clips):
        source = f"train/class_{i % 2}/{'v' * 10}{chr(97 + i % 26)}_{i:06d}_{i + 10:06d}.mp4"
        write_clip(root / source, seed=i)
        lines.append(f"{source} {i % 2}\n")
    (root / "train_list_videos.txt").write_text("".join(lines))
    (root / "classes.txt").write_text("class 0\nclass 1\n")
    (root / "manifest.json").write_text(json.dumps({"content_sha256": f"bench-{clips}"}))
    return root


def planned_views(index, examples: int) -> list[tuple[Path, np.ndarray, object]]:
    """(clip source, frame indices, view) of the first ``examples`` training examples, as the loader draws them."""
    plan = []
    for step in range(examples // BATCH):
        epochs, slots = step_examples(SEED, step, BATCH, len(index))
        for epoch, slot in zip(epochs, slots):
            row = index.iloc[slot]
            view = train_view(SEED, int(epoch), int(row.position), (row.frames, row.height, row.width), PRODUCTION)
            plan.append((row.source, looped(view.start, PRODUCTION.frames, int(row.frames)), view))
    return plan


def crop_flip(frames: np.ndarray, view) -> np.ndarray:
    crop = PRODUCTION.crop
    window = frames[:, view.top:view.top + crop, view.left:view.left + crop]
    return np.ascontiguousarray(window[:, :, ::-1] if view.flip else window)


def pyav_window(path: Path, indices: np.ndarray) -> np.ndarray:
    """The plain loader: seek to the first wanted frame's time, decode until the last, keep the wanted ones."""
    wanted = set(int(i) for i in indices)
    frames = {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        first = int(indices.min())
        container.seek(int(first / FPS / stream.time_base), stream=stream, backward=True)
        for frame in container.decode(stream):
            number = round(frame.time * FPS)
            if number in wanted:
                frames[number] = frame.to_ndarray(format="rgb24")
            if number >= indices.max():
                break
    return np.stack([frames[int(i)] for i in indices])


def run_shards(shards, examples: int) -> int:
    produced = 0
    for batch in train_batches(shards, PRODUCTION, batch_size=BATCH, seed=SEED, steps=examples // BATCH):
        assert batch["video"].shape == (BATCH, 32, 224, 224, 3)
        produced += len(batch["video"])
    return produced


def run_pyav(release: Path, plan) -> int:
    for source, indices, view in plan:
        assert crop_flip(pyav_window(release / source, indices), view).shape == (32, 224, 224, 3)
    return len(plan)


def run_decord(release: Path, plan) -> int:
    import decord

    for source, indices, view in plan:
        frames = decord.VideoReader(str(release / source), ctx=decord.cpu(0), num_threads=1).get_batch(
            list(map(int, indices))).asnumpy()
        assert crop_flip(frames, view).shape == (32, 224, 224, 3)
    return len(plan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--examples", type=int, default=48)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-i3d"))
    args = parser.parse_args()
    info = machine_info()
    release = synthetic_release(args.work / f"release-{args.clips}", args.clips)
    start = time.perf_counter()
    shards = build_shards(release, args.work / f"shards-{args.clips}")
    built = time.perf_counter() - start
    plan = planned_views(shards.index("train"), args.examples)
    loaders = {"shards (ArrayRecord + JPEG, Grain)": lambda: run_shards(shards, args.examples),
               "PyAV seek + decode + crop": lambda: run_pyav(release, plan)}
    try:
        import decord  # noqa: F401  (optional: not in the lock; see RESULTS.md for how it was installed)

        loaders["decord get_batch + crop"] = lambda: run_decord(release, plan)
    except ImportError:
        print("decord is not importable: its row is left out")
    rates = {name: [] for name in loaders}
    cpu = {name: [] for name in loaders}
    for _ in range(args.runs):
        for name, load in loaders.items():
            began, began_cpu = time.perf_counter(), time.process_time()
            count = load()
            rates[name].append(count / (time.perf_counter() - began))
            cpu[name].append((time.process_time() - began_cpu) / count * 1000)
    mp4 = sum(p.stat().st_size for p in release.rglob("*.mp4"))
    stored = sum(p.stat().st_size for p in shards.root.glob("*.array_record"))
    print(f"{info}; PyAV {av.__version__}")
    print(f"{args.clips} clips, shard build {built:.1f} s ({'reused' if built < 1 else 'built'}); "
          f"mp4 {mp4 / args.clips / 1e6:.2f} MB/clip, shards {stored / args.clips / 1e6:.2f} MB/clip")
    base = statistics.median(rates["PyAV seek + decode + crop"])
    base_cpu = statistics.median(cpu["PyAV seek + decode + crop"])
    print("| loader (1 process, 1 thread) | clips/s (median) | runs | vs PyAV | CPU ms/clip (median) | CPU vs PyAV |")
    print("|---|---:|---|---:|---:|---:|")
    for name, values in rates.items():
        median, cost = statistics.median(values), statistics.median(cpu[name])
        print(f"| {name} | {median:.2f} | {', '.join(f'{v:.1f}' for v in values)} | {median / base:.2f}x | "
              f"{cost:.0f} | {base_cpu / cost:.2f}x |")


if __name__ == "__main__":
    main()
