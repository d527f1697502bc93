"""Sandbox media: reproducible H.264 bytes, faststart MP4s, class-driven motion, duplicates that really copy;
the leftovers of a render killed mid-write are swept at the next start, a live render's are not."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest

from resources.sandbox.render import (
    STALE_PARTIAL_S, Scene, ScenePainter, Transform, apply_transform, class_motion, sweep_stale_partials,
)
from resources.sandbox.truth import GroundTruth
from resources.sandbox.world import World, WorldConfig

CFG = WorldConfig(seed=11, classes=("stacking dice", "luge"), relevant_per_class=12, distractors_per_class=2,
                  reupload_rate=0.5, compilations_per_class=1, max_duration=12.0)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    return World(CFG, tmp_path_factory.mktemp("render"))


@pytest.fixture(scope="module")
def truth(world) -> GroundTruth:
    return GroundTruth(world)


@functools.cache
def _decode(path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def _thumb(img: np.ndarray, cols: int = 8, rows: int = 6) -> np.ndarray:
    """Block means on a coarse grid: robust to compression noise, sensitive to content."""
    h, w = img.shape[0] // rows * rows, img.shape[1] // cols * cols
    return img[:h, :w].astype(np.float32).reshape(rows, h // rows, cols, w // cols, 3).mean(axis=(1, 3))


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(_thumb(a) - _thumb(b)).mean())


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _top_level_boxes(path) -> list[str]:
    data, boxes, pos = path.read_bytes(), [], 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8:pos + 16])[0]
        boxes.append(kind.decode("latin-1"))
        pos += size if size else len(data)
    return boxes


def test_same_seed_renders_identical_bytes_and_another_seed_does_not(world, truth, tmp_path):
    twin = World(CFG, tmp_path / "twin")
    other = World(dataclasses.replace(CFG, seed=12), tmp_path / "other")
    for kind in ("relevant", "reupload", "compilation"):
        video_id = truth.ids(kind=kind)[0]
        assert _digest(world.media_path(video_id)) == _digest(twin.media_path(video_id)), kind
    other_first = GroundTruth(other).ids(kind="relevant")[0]
    assert _digest(other.media_path(other_first)) != _digest(world.media_path(truth.ids(kind="relevant")[0]))


def test_media_is_faststart_h264_matching_the_metadata(world, truth):
    for kind in ("relevant", "distractor", "reupload"):
        video_id = truth.ids(kind=kind)[0]
        path, meta = world.media_path(video_id), world.metadata(video_id)
        boxes = _top_level_boxes(path)
        assert boxes.index("moov") < boxes.index("mdat"), boxes
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
            assert (stream.codec_context.width, stream.codec_context.height) == (meta.width, meta.height)
            assert stream.average_rate == meta.fps
            assert sum(1 for _ in container.decode(stream)) == round(meta.duration * meta.fps)


def test_media_is_cached_after_first_render(world, truth):
    video_id = truth.ids(kind="distractor")[0]
    first = world.media_path(video_id)
    stamp = first.stat().st_mtime_ns
    assert world.media_path(video_id) == first and first.stat().st_mtime_ns == stamp


def test_action_moves_nearly_every_frame_and_a_still_scene_does_not():
    motion = class_motion("stacking dice")
    seed = next(s for s in range(100) if ScenePainter(Scene(s, 160, 120, 25, 10)).look.still)
    painter = ScenePainter(Scene(seed, 160, 120, 25, n_frames=250, motion=motion, action_start=4.0, action_end=8.0))
    idle = [painter.frame(i) for i in range(0, 25)]
    action = [painter.frame(i) for i in range(125, 150)]
    assert all(np.array_equal(idle[0], f) for f in idle)
    moving = [not np.array_equal(a, b) for a, b in zip(action, action[1:])]
    assert sum(moving) >= 0.7 * len(moving)  # the stack family pauses one beat per cycle with the pile complete


def test_class_fixes_motion_while_each_video_has_its_own_look(world, truth):
    first, second = truth.ids(kind="relevant", label="luge")[:2]
    spec_a, spec_b = world.media_spec(world.record(first)), world.media_spec(world.record(second))
    assert spec_a.motion == spec_b.motion == class_motion("luge") != class_motion("stacking dice")
    assert not np.array_equal(ScenePainter(spec_a).look.background, ScenePainter(spec_b).look.background)


def test_reuploads_contain_the_source_frames_after_the_edit(world, truth):
    for video_id in truth.ids(kind="reupload")[:6]:  # covers crop, letterbox, mirror, logo and crf variants
        source = truth.source(video_id)
        edit = truth.transform(video_id)
        copy, original = _decode(world.media_path(video_id)), _decode(world.media_path(source))
        stranger = _decode(world.media_path(next(i for i in truth.ids(kind="relevant") if i != source)))
        for j in np.linspace(0, len(copy) - 1, 5).astype(int):
            expected = apply_transform(original[j + edit.trim_frames], edit)
            same = _distance(copy[j], expected)
            assert same < 8.0, (video_id, j, same)
            assert _distance(copy[j], apply_transform(stranger[min(j, len(stranger) - 1)], edit)) > 2 * same + 5


def test_compilations_contain_each_cut_of_their_sources(world, truth):
    for video_id in truth.ids(kind="compilation"):
        frames = _decode(world.media_path(video_id))
        spans = truth.spans(video_id)
        for k, span in enumerate(spans):
            source = _decode(world.media_path(span.original_id))
            mid = (span.start + span.end) / 2
            frame = frames[int(mid * CFG.fps)]
            same = _distance(frame, source[int((span.original_start + mid - span.start) * CFG.fps)])
            other = _decode(world.media_path(spans[(k + 1) % len(spans)].original_id))
            assert same < 8.0 and _distance(frame, other[len(other) // 2]) > 2 * same + 5


def test_transform_geometry_mirror_and_letterbox():
    img = np.zeros((120, 160, 3), dtype=np.uint8)
    img[:, :80] = 255
    out = apply_transform(img, Transform(width=96, height=72, mirror=True, pad=0.2))
    assert out.shape == (72, 96, 3)
    assert out[36, 90].max() == 255 and out[36, 5].max() == 0   # mirrored: white moved to the right
    assert out[:7].max() == 0 and out[-7:].max() == 0          # letterbox bars


LONG = dict(seed=11, classes=["luge"], relevant_per_class=4, distractors_per_class=0, reupload_rate=0.0,
            compilations_per_class=0)
RENDER_CHILD = """
import json, sys
from pathlib import Path
from resources.sandbox.world import World, WorldConfig
config = json.loads(sys.argv[2])
world = World(WorldConfig(**{**config, "classes": tuple(config["classes"])}), Path(sys.argv[1]))
world.media_path(max(world.iter_records(), key=lambda r: r.duration).id)
"""


def _start_render(cache: Path) -> tuple[subprocess.Popen, Path]:
    """A process rendering a long video into `cache`, once its partial file has appeared."""
    child = subprocess.Popen([sys.executable, "-c", RENDER_CHILD, str(cache), json.dumps(LONG)],
                             cwd=Path(__file__).parents[1])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        partials = list(cache.glob(f"media-*/.*.{child.pid}-*.part"))
        if partials:
            return child, partials[0]
        assert child.poll() is None, "the render ended before its partial file was seen"
        time.sleep(0.01)
    child.kill()
    raise AssertionError("no partial file appeared within 60 s")


def test_next_start_sweeps_a_killed_renders_partial_file_but_not_a_live_ones(tmp_path):
    killed, leftover = _start_render(tmp_path)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    assert leftover.exists(), "kill -9 leaves the partial file behind"
    live, in_flight = _start_render(tmp_path)
    try:
        World(WorldConfig(**{**LONG, "classes": tuple(LONG["classes"])}), tmp_path)  # the next start
        assert not leftover.exists()
        assert in_flight.exists() and live.poll() is None, "a live render's partial file must stay"
        assert live.wait(timeout=120) == 0 and not in_flight.exists()
        assert [p.name for p in in_flight.parent.iterdir()] == [in_flight.name.split(".")[1] + ".mp4"]
    finally:
        live.kill()


def test_a_partial_file_untouched_for_an_hour_is_stale_even_if_its_pid_lives(tmp_path):
    fresh, old = (tmp_path / f".{name}.mp4.{os.getpid()}-1.part" for name in ("fresh", "old"))
    foreign = tmp_path / ".notes.part"  # not a name partial_path gives: never ours to delete
    for path in (fresh, old, foreign):
        path.write_bytes(b"x")
    hours_ago = time.time() - STALE_PARTIAL_S - 60
    os.utime(old, (hours_ago, hours_ago))
    assert sweep_stale_partials(tmp_path) == [old]
    assert fresh.exists() and foreign.exists()
