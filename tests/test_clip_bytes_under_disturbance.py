"""A clip's bytes depend on its source and window only, never on the machine or the moment that encodes it.

Protects: two demo runs on one machine gave one clip other bytes (frames from the 68th on differing by about one
grey level; the source and the HTTP path were the same): x264 ran 1.5 frame threads a core (its automatic count)
with its AVX-512 macroblock-tree code, which reads data its AVX2 and C code do not, so under CPU load one or two
encodes in a hundred came out different (cutting the local file too). The same two settings make a clip's bytes
follow the core count and the SIMD level of the machine. Each test fetches one
annotated clip through the real clip path (yt-dlp, ffmpeg over HTTP from the sandbox) twice, once through an
`ffmpeg` on PATH that emulates another machine, and wants the same bytes.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kinetics_assets.acquisition.clips import ClipFormat, ClipRequest, acquire_clips
from kinetics_assets.acquisition.ledger import ClipLedger
from resources.clip_store import LocalClipStore
from resources.media_tools import ffmpeg_exe
from resources.sandbox.resource import SandboxPlatform
from resources.sandbox.truth import GroundTruth
from resources.sandbox.world import DEMO_CLASSES
from resources.token_bucket import TokenBucket

pytestmark = pytest.mark.timeout(120)

# Runs the real ffmpeg as another machine would: pinned to `cores` of ours, and with `extra` output options.
_OTHER_MACHINE = """\
import os, sys
cores, extra, log = {cores!r}, {extra!r}, {log!r}
args = sys.argv[1:]
if "-i" in args:  # an encode (yt-dlp also asks for -version)
    if cores:
        os.sched_setaffinity(0, cores)
    args[-1:-1] = extra  # output options go before the output file
    with open(log, "a") as out:
        out.write(f"{{sorted(os.sched_getaffinity(0))}} {{extra}}\\n")
os.execv({ffmpeg!r}, [{ffmpeg!r}, *args])
"""


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    sandbox = SandboxPlatform(seed=0, classes=list(DEMO_CLASSES[:1]), relevant_per_class=3, distractors_per_class=0,
                              compilations_per_class=0, reupload_rate=0.0, max_duration=20,
                              cache_dir=str(tmp_path_factory.mktemp("disturbance-sandbox")))
    yield sandbox
    sandbox.shutdown()


@pytest.fixture(scope="module")
def clip_request(platform):
    world, clock = platform.server.world, platform.server.clock
    video = next(v for v in GroundTruth(world).ids(kind="relevant")
                 if world.availability(v, clock).available and world.record(v).duration >= 12)
    return ClipRequest(video, "annotated", 2, 12)


def _clip_bytes(platform, request: ClipRequest, root: Path) -> tuple[int, str]:
    """The size and SHA-256 of the request's clip, fetched into a fresh store under `root`."""
    with ClipLedger(root / "ledger.sqlite") as ledger:
        [outcome] = acquire_clips(platform, [request], LocalClipStore(root=str(root)), ledger,
                                  rate_limit=TokenBucket(rate_per_s=100.0, burst=100), concurrency=1,
                                  clip_format=ClipFormat())
    assert outcome.status == "done", outcome
    clip = Path(outcome.path).read_bytes()
    return len(clip), hashlib.sha256(clip).hexdigest()


@pytest.fixture(scope="module")
def here(platform, clip_request, tmp_path_factory) -> tuple[int, str]:
    """The clip as this machine encodes it."""
    return _clip_bytes(platform, clip_request, tmp_path_factory.mktemp("here"))


def _on_other_machine(platform, clip_request, tmp_path: Path, monkeypatch, cores: set[int],
                      extra: list[str]) -> tuple[int, str]:
    bin_dir, log = tmp_path / "bin", tmp_path / "encodes.log"
    bin_dir.mkdir()
    script = bin_dir / "other_machine.py"
    script.write_text(_OTHER_MACHINE.format(cores=cores, extra=extra, log=str(log), ffmpeg=str(ffmpeg_exe())))
    wrapper = bin_dir / "ffmpeg"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{script}" "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    clip = _clip_bytes(platform, clip_request, tmp_path / "store")
    encodes = log.read_text().splitlines()
    assert len(encodes) == 1, f"the clip was not encoded through the emulated machine: {encodes}"
    return clip


def test_a_clip_has_the_same_bytes_on_a_machine_with_fewer_cores(platform, clip_request, here, tmp_path, monkeypatch):
    ours = os.sched_getaffinity(0)
    if len(ours) < 2:
        pytest.skip("one core: no machine with fewer cores to emulate")
    there = _on_other_machine(platform, clip_request, tmp_path, monkeypatch, {min(ours)}, [])
    assert there == here, "x264's thread count (and so the clip) follows the machine's core count"


def _x264_cpu_capabilities() -> list[str]:
    """The SIMD levels x264 uses on this machine, in its own names (as its `asm` option takes them)."""
    log = subprocess.run([str(ffmpeg_exe()), "-nostdin", "-f", "lavfi", "-i", "color=size=64x64:duration=0.04",
                          "-c:v", "libx264", "-f", "null", "-"], capture_output=True, text=True, check=True).stderr
    return re.search(r"using cpu capabilities: (.*)", log).group(1).split()


def test_a_clip_has_the_same_bytes_on_a_machine_without_avx512(platform, clip_request, here, tmp_path, monkeypatch):
    capabilities = _x264_cpu_capabilities()
    if "AVX512" not in capabilities:
        pytest.skip(f"x264 uses no AVX-512 here ({' '.join(capabilities)}): no machine without it to emulate")
    without = ",".join(c for c in capabilities if c != "AVX512")
    there = _on_other_machine(platform, clip_request, tmp_path, monkeypatch, set(), ["-x264opts", f"asm={without}"])
    assert there == here, "x264's AVX-512 macroblock-tree code gives other bytes than its AVX2 code"
