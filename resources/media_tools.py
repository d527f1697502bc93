"""Put the wheel-shipped ffmpeg on PATH for yt-dlp, with no system packages or internet.

yt-dlp's section downloads (download_ranges) pick FFmpegFD, which looks for an executable named
`ffmpeg` on PATH; `ffmpeg_location` does not reach that check. imageio-ffmpeg ships a static
ffmpeg binary under a versioned name, so we expose it through a per-user bin directory holding a
symlink called `ffmpeg`. ffprobe is not needed: section downloads of progressive HTTP formats
run ffmpeg only (tests/test_sandbox_ytdlp.py downloads a section with no ffprobe anywhere).
"""

from __future__ import annotations

import os
import pathlib
import threading

import imageio_ffmpeg

_LOCK = threading.Lock()


def user_cache_dir() -> pathlib.Path:
    """Per-user cache root for the project (XDG), so nothing is written into the venv or repo."""
    cache = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(cache) / "kinetics-curation"


def user_bin_dir() -> pathlib.Path:
    return user_cache_dir() / "bin"


def ffmpeg_exe() -> pathlib.Path:
    """The ffmpeg binary shipped inside the imageio-ffmpeg wheel."""
    return pathlib.Path(imageio_ffmpeg.get_ffmpeg_exe())


def ensure_ffmpeg_on_path() -> pathlib.Path:
    """Link `ffmpeg` into the user bin dir and prepend that dir to PATH; idempotent. Returns the link."""
    with _LOCK:
        target = ffmpeg_exe()
        bin_dir = user_bin_dir()
        bin_dir.mkdir(parents=True, exist_ok=True)
        link = bin_dir / "ffmpeg"
        if not (link.is_symlink() and pathlib.Path(os.readlink(link)) == target):
            tmp = bin_dir / f".ffmpeg.{os.getpid()}.{threading.get_ident()}.tmp"
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(target)
            os.replace(tmp, link)  # atomic: concurrent processes never see a missing or half-made link
        entries = os.environ.get("PATH", "").split(os.pathsep)
        if str(bin_dir) not in entries:
            os.environ["PATH"] = os.pathsep.join([str(bin_dir), *filter(None, entries)])
        return link
