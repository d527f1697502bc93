"""Localization: which 10-s window of a video becomes its clip.

Protects: the motion strategy finds the action segment of sandbox videos (checked against the sandbox's ground
truth, which only this test reads) by decoding the cheapest rendition over HTTP; the scoring arithmetic (best
window, earliest on ties, scene cuts ignored, camera pans and shake and fades taken out, an object moving in the
picture kept); the fixed strategy's offset and clamping; short videos give the
whole video, flagged; strategies are looked up by name and `model` is a clear "not yet" rather than a fake.
"""

from __future__ import annotations

import math

import av
import numpy as np
import pytest

from kinetics_assets.acquisition.localize import (
    CLIP_SECONDS,
    STRATEGIES,
    FixedStrategy,
    MotionStrategy,
    SourceVideo,
    Window,
    best_window_start,
    clip_id,
    energy_per_second,
    make_strategy,
    register_strategy,
)
from resources.sandbox.resource import SandboxPlatform
from resources.sandbox.truth import GroundTruth
from resources.sandbox.world import DEMO_CLASSES

pytestmark = pytest.mark.timeout(180)


def _source(duration: float | None, opened: list | None = None) -> SourceVideo:
    def open_preview():
        if opened is not None:
            opened.append(True)
        raise AssertionError("this strategy must not need pixels")
    return SourceVideo("dQw4w9WgXcQ", duration, open_preview)


def test_official_clip_names():
    assert clip_id("dQw4w9WgXcQ", 5, 15) == "dQw4w9WgXcQ_000005_000015"
    assert clip_id("dQw4w9WgXcQ", 5.9, 15.9) == "dQw4w9WgXcQ_000005_000015"  # whole seconds, as torchvision
    with pytest.raises(ValueError, match="invalid video id"):
        clip_id("../etc/pass", 0, 10)


def test_windows_must_be_a_clip_or_less():
    with pytest.raises(ValueError):
        Window(5, 5)
    with pytest.raises(ValueError):
        Window(0, CLIP_SECONDS + 1)


def test_best_window_is_where_the_energy_is():
    energy = np.full(60, 0.1)
    energy[23:33] = 5.0
    assert best_window_start(energy, 60.0) == 23


def test_ties_go_to_the_earliest_window():
    assert best_window_start(np.ones(40), 40.0) == 0
    energy = np.zeros(50)
    energy[5], energy[30] = 1.0, 1.0  # two equally good windows: [0..5] and [21..30] starts all score 1
    assert best_window_start(energy, 50.0) == 0


def test_windows_stay_inside_the_video():
    energy = np.zeros(30)
    energy[-3:] = 9.0  # the motion is at the very end: the window ends with the video
    assert best_window_start(energy, 30.0) == 20
    assert best_window_start(np.zeros(3), 10.4) == 0
    with pytest.raises(ValueError, match="holds no 10-s window"):
        best_window_start(np.zeros(3), 9.5)


def test_a_scene_cut_is_not_motion():
    still, moving = np.zeros((8, 8)), np.zeros((8, 8))
    moving[2:4, 2:4] = 255
    frames = []
    for i in range(4 * 30):  # 30 s at 4 samples per second
        t = i / 4
        if 20 <= t < 26:
            frames.append((t, np.roll(moving, i % 5, axis=1)))  # motion in seconds 20..25
        else:
            frames.append((t, still + (100 if t >= 8 else 0)))  # one cut at 8 s: a single huge difference
    energy = energy_per_second(frames)
    assert energy[7] == 0 and energy[8] == 0
    assert energy[20:26].min() > 0


def _textured_place(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Busy scenery (smoothed noise) larger than the picture, for a camera to pan across."""
    noise = rng.uniform(0, 255, size=(h, w))
    return (noise + np.roll(noise, 1, axis=0) + np.roll(noise, 1, axis=1) + np.roll(noise, (1, 1), axis=(0, 1))) / 4


def test_camera_pans_and_shake_are_not_motion_but_an_object_moving_in_the_picture_is():
    rng = np.random.default_rng(3)
    place = _textured_place(rng, 40, 120)
    frames = []
    for i in range(4 * 60):  # 60 s at 4 samples a second, 32x24 grey, as MotionStrategy samples
        t = i / 4
        if 30 <= t < 42:  # a tripod shot with a small object moving back and forth: the action
            picture = place[8:32, 40:72].copy()
            x = 12 + round(6 * math.sin(i * 1.7))
            picture[10:14, x:x + 4] = 255
        elif t < 30:  # the camera pans across the place, a pixel a sample
            picture = place[8:32, i % 80:i % 80 + 32]
        else:  # a handheld camera: the picture jumps by a pixel now and then
            dy, dx = rng.integers(-1, 2, size=2)
            picture = place[8 + dy:32 + dy, 40 + dx:72 + dx]
        frames.append((t, picture))
    energy = energy_per_second(frames)
    assert best_window_start(energy, 60.0) in range(30, 33), energy.round(1)
    assert energy[30:42].min() > 5 * max(energy[:29].max(), energy[43:].max())


def test_a_fade_is_not_motion():
    place = _textured_place(np.random.default_rng(4), 24, 32)
    frames = [(i / 4, place * min(1.0, i / 8)) for i in range(40)]  # fades in from black over 2 s
    assert energy_per_second(frames)[:2].max() < 0.05 * np.mean((place[1:] - place[:-1]) ** 2)


def test_fixed_strategy_uses_the_offset_and_needs_no_pixels():
    opened: list = []
    assert FixedStrategy(offset_s=30).localize(_source(100.0, opened)) == Window(30, 40)
    assert FixedStrategy(offset_s=30).localize(_source(35.5, opened)) == Window(25, 35)
    assert FixedStrategy().localize(_source(None, opened)) == Window(0, 10)
    assert opened == []
    with pytest.raises(ValueError):
        FixedStrategy(offset_s=-1)


@pytest.mark.parametrize("strategy", [FixedStrategy(offset_s=3), MotionStrategy()])
def test_short_videos_are_kept_whole_and_flagged(strategy):
    window = strategy.localize(_source(6.04))
    assert window == Window(0, 7, short_source=True)


def test_strategies_by_name():
    assert isinstance(make_strategy(), MotionStrategy)
    assert make_strategy("fixed", offset_s=12).offset_s == 12
    with pytest.raises(ValueError, match="available: motion, fixed, model"):
        make_strategy("psychic")
    with pytest.raises(ValueError, match="already registered"):
        register_strategy("motion", MotionStrategy)
    assert STRATEGIES["motion"] is MotionStrategy


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    """Videos up to 2 minutes: long enough that a naive window (start, middle, end) often misses the action."""
    sandbox = SandboxPlatform(classes=list(DEMO_CLASSES[:2]), relevant_per_class=6, distractors_per_class=0,
                              compilations_per_class=0, reupload_rate=0.0, max_duration=120,
                              cache_dir=str(tmp_path_factory.getbasetemp() / "localize-sandbox"))
    yield sandbox
    sandbox.shutdown()


def _http_source(platform, video_id: str) -> SourceVideo:
    """The pipeline's view: metadata through yt-dlp, pixels decoded over HTTP from the listed format."""
    info = platform.youtube_dl().extract_info(platform.watch_url(video_id), download=False, process=False)
    fmt = min(info["formats"], key=lambda f: f["height"])  # the low-resolution rendition, as the pipeline picks
    return SourceVideo(video_id, info["duration"], lambda: av.open(fmt["url"], timeout=30))


def test_motion_finds_the_action_in_most_sandbox_videos(platform):
    world, truth = platform.server.world, GroundTruth(platform.server.world)
    videos = [v for v in truth.ids(kind="relevant") if world.availability(v, platform.server.clock).available
              and world.record(v).duration >= 2 * CLIP_SECONDS]
    assert len(videos) >= 6, "the test world should hold enough long videos to be meaningful"
    middle = [truth.window_shows_class(v, int(world.record(v).duration / 2) - 5, int(world.record(v).duration / 2) + 5)
              is not None for v in videos]
    strategy, hits = MotionStrategy(), []
    for video in videos:
        window = strategy.localize(_http_source(platform, video))
        assert window.end - window.start == CLIP_SECONDS and not window.short_source
        assert window.end <= math.floor(world.record(video).duration)
        hits.append(truth.window_shows_class(video, window.start, window.end) is not None)
    assert sum(hits) >= 0.8 * len(hits), (f"motion localized {sum(hits)} of {len(hits)} action segments "
                                          f"(the middle window: {sum(middle)})")


def test_motion_is_deterministic(platform):
    truth = GroundTruth(platform.server.world)
    video = next(v for v in truth.ids(kind="relevant")
                 if platform.server.world.availability(v, platform.server.clock).available)
    first = MotionStrategy().localize(_http_source(platform, video))
    assert MotionStrategy().localize(_http_source(platform, video)) == first
