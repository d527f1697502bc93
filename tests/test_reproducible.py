"""Reproducible sandbox media: two fresh processes render the same bytes and the localizer picks the same windows.

Protects: the cause of two clean demos releasing different CSVs. x264's AVX-512 macroblock-tree kernels read
buffers it never wrote, so a video's bytes (and pixels: previews drifted by up to 94 grey levels) depended on
what earlier encodes had left on the process heap; the motion localizer then chose other windows. The children
render the way the demo does: lazily, through the server, several requests at once, previews decoded over HTTP
while other videos are encoded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(240)

# Small videos at the re-uploads' scaled sizes (96x72 ... 192x144; previews 24x18 ... 48x36) are the ones that
# drifted; half the relevant videos get a re-upload here.
WORLD = dict(classes=["jumping sofa", "luge"], relevant_per_class=8, distractors_per_class=1, reupload_rate=0.5,
             compilations_per_class=1, max_duration=30.0)

CHILD = """
import hashlib, json, sys
from concurrent.futures import ThreadPoolExecutor

import av

from kinetics_assets.acquisition.localize import MotionStrategy, SourceVideo
from resources.sandbox.resource import SandboxPlatform

platform = SandboxPlatform(cache_dir=sys.argv[1], **json.loads(sys.argv[2]))
world, clock = platform.server.world, platform.server.clock
ids = [r.id for r in world.iter_records() if world.availability(r.id, clock).available]

def window(video_id):
    info = platform.youtube_dl().extract_info(platform.watch_url(video_id), download=False, process=False)
    preview = min(info["formats"], key=lambda f: f["height"])
    found = MotionStrategy().localize(SourceVideo(video_id, info["duration"],
                                                  lambda: av.open(preview["url"], timeout=30)))
    return video_id, [found.start, found.end]

def full(video_id):
    world.media_path(video_id)
    return None

tasks = [(job, video_id) for video_id in ids for job in (window, full)]
with ThreadPoolExecutor(3) as pool:
    windows = dict(found for found in pool.map(lambda task: task[0](task[1]), tasks) if found)
platform.shutdown()
media = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(world.media_dir.glob("*.mp4"))}
print(json.dumps({"windows": windows, "media": media}))
"""


def _render_and_localize_in_two_processes(tmp_path: Path) -> tuple[dict, dict]:
    children = [subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / name), json.dumps(WORLD)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 cwd=Path(__file__).parents[1])
                for name in ("first", "second")]
    results = []
    for child in children:
        out, err = child.communicate(timeout=200)
        assert child.returncode == 0, err[-3000:]
        results.append(json.loads(out))
    return results[0], results[1]


def test_fresh_processes_render_identical_media_and_choose_identical_windows(tmp_path):
    first, second = _render_and_localize_in_two_processes(tmp_path)
    previews = [name for name in first["media"] if name.endswith(".preview.mp4")]
    assert len(previews) >= 15 and len(first["media"]) >= 35, "the world must exercise many renders"
    differing = sorted(name for name in first["media"] if first["media"][name] != second["media"].get(name))
    assert not differing and first["media"].keys() == second["media"].keys(), (
        f"{len(differing)} of {len(first['media'])} media files differ between two fresh processes: {differing}")
    moved = {v: (w, second["windows"][v]) for v, w in first["windows"].items() if w != second["windows"][v]}
    assert not moved, f"the motion localizer chose other windows: {moved}"
