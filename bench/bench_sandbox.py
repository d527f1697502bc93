"""Benchmark the sandbox world: render+encode throughput and search latency at Kinetics-700 scale.

    .venv/bin/python bench/bench_sandbox.py [--classes 700 --videos-per-class 3000] [--write-results]

Targets (issue 3): median search < 50 ms on 700 classes x 3,000 videos; rendering >= 10x real time at the
default 160x120, 25 fps. With --write-results the numbers replace the "Sandbox" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import random
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from resources.sandbox.render import ScenePainter
from resources.sandbox.text import class_phrases, curated_classes
from resources.sandbox.world import DEMO_CLASSES, World, WorldConfig, index_path, kinetics700_classes

RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION = "## Sandbox"
SEARCH_TARGET_MS = 50.0
RENDER_TARGET_X = 10.0


def machine_info() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"nproc={os.cpu_count()}, CPU: {model}, Python {platform.python_version()}, "
            f"load average at start {load} (the machine is shared: other jobs slow every number here)")


def bench_render(cache_dir: Path, n_videos: int) -> dict:
    """Render+encode one relevant video per demo class (at most 12) at default durations and resolution."""
    world = World(WorldConfig(seed=0, classes=DEMO_CLASSES[:n_videos], relevant_per_class=1,
                              distractors_per_class=0, compilations_per_class=0, reupload_rate=0.0), cache_dir)
    records = list(world.iter_records(kind="relevant"))
    frames = sum(round(r.duration * r.fps) for r in records)
    start = time.perf_counter()
    for rec in records:
        world.media_path(rec.id)
    encode_s = time.perf_counter() - start
    painter = ScenePainter(world.media_spec(records[0]))
    n_paint = min(2000, round(records[0].duration * records[0].fps))
    start = time.perf_counter()
    for i in range(n_paint):
        painter.frame(i)
    paint_fps = n_paint / (time.perf_counter() - start)
    seconds = frames / world.config.fps
    return {"videos": len(records), "video_seconds": seconds, "wall_s": encode_s,
            "videos_per_s": len(records) / encode_s, "frames_per_s": frames / encode_s,
            "x_real_time": seconds / encode_s, "paint_only_fps": paint_fps}


def scale_config(classes: int, per_class: int) -> WorldConfig:
    """A world of `classes` classes with about `per_class` videos each (relevant, distractors, copies)."""
    distractors, compilations, reupload_rate = per_class // 5, 4, 0.04
    relevant = round((per_class - distractors - compilations) / (1 + reupload_rate))
    return WorldConfig(seed=0, classes=tuple(sorted(kinetics700_classes()))[:classes], relevant_per_class=relevant,
                       distractors_per_class=distractors, reupload_rate=reupload_rate,
                       compilations_per_class=compilations)


def queries(cfg: WorldConfig, rng: random.Random) -> list[str]:
    """What a replenishment run asks: every class name, some verb forms, the curated translations/synonyms."""
    out = list(cfg.classes)
    out += [class_phrases(c).phrasings["en_infinitive"][0] for c in rng.sample(cfg.classes, min(100, len(cfg.classes)))]
    for label in curated_classes():
        if label in cfg.classes:
            phrases = class_phrases(label).phrasings
            out += [phrases[k][0] for k in ("en_synonym", "fr", "es", "pt")]
    return out


def bench_search(cache_dir: Path, cfg: WorldConfig) -> dict:
    cached = index_path(cfg, cache_dir).exists()
    start = time.perf_counter()
    world = World(cfg, cache_dir)
    build_s = None if cached else time.perf_counter() - start
    n_videos = len(world)
    on = cfg.epoch + timedelta(days=365)
    asked = queries(cfg, random.Random(0))
    for q in asked[:20]:  # warm the page cache once, as a long-running server would be
        world.search(q, 50, on)
    latencies = []
    for q in asked:
        t = time.perf_counter()
        world.search(q, 50, on)
        latencies.append((time.perf_counter() - t) * 1000)
    latencies.sort()
    return {"videos": n_videos, "build_s": build_s, "db_mb": world.db_path.stat().st_size / 2 ** 20,
            "queries": len(latencies), "median_ms": statistics.median(latencies),
            "p95_ms": latencies[int(0.95 * (len(latencies) - 1))], "max_ms": latencies[-1]}


def clips(cfg: WorldConfig, frames: int = 16, stride: int = 3, scale: int = 4):
    """One clip per relevant video from the middle of its action, block-downscaled and with the clip's mean frame
    subtracted (a standard static-appearance removal): (N, T, H, W, 3) and labels."""
    import numpy as np

    with tempfile.TemporaryDirectory(prefix="bench-learn-") as scratch:
        world = World(cfg, Path(scratch))
        xs, ys = [], []
        for rec in world.iter_records(kind="relevant"):
            painter = ScenePainter(world.media_spec(rec))
            first = int((rec.action_start + rec.action_end) / 2 * rec.fps) - frames * stride // 2
            first = max(int(rec.action_start * rec.fps), first)
            video = np.stack([painter.frame(first + i * stride) for i in range(frames)]).astype(np.float32) / 128 - 1
            t, h, w, c = video.shape
            small = video.reshape(t, h // scale, scale, w // scale, scale, c).mean(axis=(2, 4))
            xs.append(small - small.mean(axis=0))  # minus the clip's mean frame: static appearance drops out
            ys.append(cfg.classes.index(rec.label))
    return np.stack(xs), np.array(ys)


def bench_learnability(per_class: int, steps: int) -> dict:
    """Train a small 3D-conv net on clips of the demo classes; report held-out accuracy (chance = 1/12).

    Each video has its own random look, so only the class's motion can carry the label across videos.
    """
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    from flax import linen as nn

    class Tiny3D(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.Conv(8, (3, 3, 3), strides=(1, 2, 2))(x))
            for features in (16, 32):
                x = nn.avg_pool(x, (2, 2, 2), strides=(2, 2, 2))
                x = nn.relu(nn.Conv(features, (3, 3, 3))(x))
            return nn.Dense(len(DEMO_CLASSES))(x.mean(axis=(1, 2, 3)))

    train_cfg = WorldConfig(seed=101, relevant_per_class=per_class, distractors_per_class=0, reupload_rate=0.0,
                            compilations_per_class=0, max_duration=40.0)
    x_train, y_train = clips(train_cfg)
    x_test, y_test = clips(dataclasses.replace(train_cfg, seed=202, relevant_per_class=max(4, per_class // 3)))
    model = Tiny3D()
    params = model.init(jax.random.PRNGKey(0), x_train[:1])
    optimizer = optax.adam(3e-3)
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, opt_state, x, y):
        def loss_fn(p):
            return optax.softmax_cross_entropy_with_integer_labels(model.apply(p, x), y).mean()
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = optimizer.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state, loss

    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(steps):
        batch = rng.choice(len(x_train), size=32, replace=False)
        params, opt_state, loss = step(params, opt_state, x_train[batch], y_train[batch])
    predictions = np.asarray(jnp.argmax(model.apply(params, x_test), axis=-1))
    train_predictions = np.asarray(jnp.argmax(model.apply(params, x_train), axis=-1))
    return {"train_videos": len(x_train), "test_videos": len(x_test), "steps": steps,
            "train_s": time.perf_counter() - start, "final_loss": float(loss),
            "train_accuracy": float((train_predictions == y_train).mean()),
            "test_accuracy": float((predictions == y_test).mean()), "chance": 1 / len(DEMO_CLASSES)}


def section(render: dict, search: dict, cfg: WorldConfig, learn: dict | None, machine: str) -> str:
    build = "reused from --cache-dir" if search["build_s"] is None else f"{search['build_s']:.0f} s"
    return f"""{SECTION}

`bench/bench_sandbox.py` ({time.strftime('%Y-%m-%d')}; {machine}).

| measure | value | target | ratio |
|---|---|---|---|
| render+encode, {render['videos']} demo videos, {render['video_seconds']:.0f} s of 160x120@25 video | \
{render['wall_s']:.1f} s wall, {render['videos_per_s']:.2f} videos/s, {render['frames_per_s']:.0f} frames/s | | |
| render+encode speed | {render['x_real_time']:.0f}x real time | >= {RENDER_TARGET_X:.0f}x | \
{render['x_real_time'] / RENDER_TARGET_X:.1f}x the target |
| paint only (numpy, no encode) | {render['paint_only_fps']:.0f} frames/s | | |
| world index build, {len(cfg.classes)} classes, {search['videos']:,} videos | {build}, \
{search['db_mb']:.0f} MiB SQLite+FTS5 | once per world | |
| search latency, {search['queries']} queries (class names, verb forms, translations), limit 50 | \
median {search['median_ms']:.1f} ms, p95 {search['p95_ms']:.1f} ms, max {search['max_ms']:.0f} ms | \
median < {SEARCH_TARGET_MS:.0f} ms | {SEARCH_TARGET_MS / search['median_ms']:.0f}x under the target |

{_learn_lines(learn)}
Search cost grows with the number of matching documents: one-word queries that match a large share of
the world (e.g. a word used in many titles) take far longer than class-name queries; the pipeline sends
multi-word class queries. Build time is paid once per world config (cached under cache_dir).
"""


def _learn_lines(learn: dict | None) -> str:
    if learn is None:
        return "(learnability not measured in this run: pass --learnability)\n"
    return (f"Learnability: a 3-layer 3D-conv net ({learn['steps']} Adam steps, {learn['train_s']:.0f} s on CPU) "
            f"trained on {learn['train_videos']} demo-class clips (16 frames, 40x30, clip mean frame subtracted) "
            f"reaches {learn['train_accuracy']:.0%} train and {learn['test_accuracy']:.0%} held-out accuracy on "
            f"{learn['test_videos']} clips of another seed's videos (chance {learn['chance']:.0%}).\n")


def write_section(text: str) -> None:
    """Replace (or append) the Sandbox section of RESULTS.md, keeping other sections intact."""
    old = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    lines, out, skipping = old.splitlines(keepends=True), [], False
    for line in lines:
        if line.startswith("## "):
            skipping = line.strip() == SECTION
        if not skipping:
            out.append(line)
    body = "".join(out).rstrip("\n") + "\n\n" + text
    tmp = RESULTS.with_name(RESULTS.name + ".part")
    tmp.write_text(body, encoding="utf-8")
    os.replace(tmp, RESULTS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classes", type=int, default=700)
    parser.add_argument("--videos-per-class", type=int, default=3000)
    parser.add_argument("--render-videos", type=int, default=12, choices=range(1, 13))
    parser.add_argument("--cache-dir", type=Path, default=None, help="Reuse a world index between runs.")
    parser.add_argument("--write-results", action="store_true")
    parser.add_argument("--learnability", action="store_true", help="Also train a small 3D-conv net (CPU).")
    parser.add_argument("--learn-per-class", type=int, default=30)
    parser.add_argument("--learn-steps", type=int, default=300)
    args = parser.parse_args()
    machine = machine_info()
    cfg = scale_config(args.classes, args.videos_per_class)
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as scratch:
        render = bench_render(Path(scratch) / "render", args.render_videos)
        print(render, flush=True)
        search = bench_search(args.cache_dir or Path(scratch) / "search", cfg)
        print(search, flush=True)
    learn = bench_learnability(args.learn_per_class, args.learn_steps) if args.learnability else None
    print(learn, flush=True)
    text = section(render, search, cfg, learn, machine)
    print(text)
    if args.write_results:
        write_section(text)


if __name__ == "__main__":
    main()
