"""Frame-level perceptual fingerprints of a clip: what re-uploads, compilations and sub-clips still share.

A clip is sampled at about 2 fps; each sampled frame is decoded straight to a small grey image by FFmpeg (PyAV's
reformat, so no full-resolution pixels reach Python), its letterbox/pillarbox bars are stripped, and a 64-bit
DCT pHash is taken of the whole picture, of its mirror image and of nine crop windows. The crop windows exist
because a pHash survives only ~5 % of cropping: a copy cropped by up to 15 % looks like one of the windows of
its original (see ``search``: windows are looked up against whole-frame and mirrored hashes).

Each frame also keeps its spatial detail (mean absolute gradient of the 32 x 32 hash input, in grey levels): a
still shot of a detailed scene (a slide, a shelf, foliage) hashes to stable, specific bits, while a flat or
textureless frame's hash is decided by a gradient or noise and resembles other flat scenes; ``match`` trusts
near-still matches only between detailed frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pandas as pd
from scipy.fft import dctn

from kinetics_assets.area_average import area_weights

SAMPLE_FPS = 2.0
DECODE_SIZE = 96      # frames are decoded to DECODE_SIZE x DECODE_SIZE grey (aspect does not matter to pHash)
HASH_INPUT = 32       # pHash input: area-averaged 32 x 32 grey
MIN_FRAME_STD = 6.0   # grey levels; flatter frames (black, fades, title cards) would match everything
# Mean |gradient| (grey levels per pixel, 32 x 32) from which a frame counts as detailed. Measured on rendered
# footage: flat gradients 0.6-1.7, sandbox gradient backgrounds with shapes 3.4-4.5, slides with text 7.5-11
# (their 96x72 CRF 35-38 copies 8-11), textured tripod shots 10-24 (their 96x72 copies down to 6.3).
MIN_DETAIL = 5.0
BORDER_MAX_STD = 5.0  # a letterbox row/column is flat in space and time ...
BORDER_MAX_MEAN = 40.0  # ... and dark (graded copies lift black bars a little)
BORDER_MAX_SHARE = 0.3  # never strip more than this share of a side
# A file that decodes this much short of the duration its container declares was cut off (a faststart MP4 keeps
# its index, written for every frame, at the front; edit lists and frame reordering differ by a few frames).
# Only MP4/MOV declare durations from such an index; other containers' may be estimates from the bitrate.
TRUNCATION_TOLERANCE_S = 0.5
INDEXED_FORMATS = {"mov,mp4,m4a,3gp,3g2,mj2"}

# Crop windows (share cut from left, top, right, bottom), chosen by measurement: a copy cropped by up to 15 % of
# each dimension (any split between its two sides, or a corner) is within a few percent of one of these views of
# its original, close enough for a pHash.
WINDOWS: dict[str, tuple[float, float, float, float]] = {
    "crop_centre": (0.07, 0.07, 0.07, 0.07),
    "crop_left": (0.10, 0.03, 0.0, 0.03),
    "crop_top": (0.03, 0.10, 0.03, 0.0),
    "crop_right": (0.0, 0.03, 0.10, 0.03),
    "crop_bottom": (0.03, 0.0, 0.03, 0.10),
    "crop_top_left": (0.15, 0.15, 0.0, 0.0),
    "crop_top_right": (0.0, 0.15, 0.15, 0.0),
    "crop_bottom_right": (0.0, 0.0, 0.15, 0.15),
    "crop_bottom_left": (0.15, 0.0, 0.0, 0.15),
}
HASH_COLUMNS = ("hash", "mirrored_hash", *WINDOWS)
VIEW_COLUMNS = [0, *range(2, len(HASH_COLUMNS))]  # the whole frame and its crop windows, as a copy may show it


@dataclass(frozen=True)
class Fingerprint:
    """Per sampled frame: time (s from the first frame), whole-frame hash, mirrored hash, crop-window hashes,
    spatial detail (unknown detail, e.g. of fingerprints stored before it was measured, counts as flat: 0)."""

    times: np.ndarray       # (n,) float64, increasing
    hashes: np.ndarray      # (n, len(HASH_COLUMNS)) uint64, columns in HASH_COLUMNS order
    duration: float         # seconds of video decoded (>= last time)
    detail: np.ndarray | None = None  # (n,) float32, see MIN_DETAIL

    def __post_init__(self):
        if self.hashes.shape != (len(self.times), len(HASH_COLUMNS)) or self.hashes.dtype != np.uint64:
            raise ValueError(f"fingerprint hashes must be uint64 of shape ({len(self.times)}, {len(HASH_COLUMNS)}), "
                             f"got {self.hashes.dtype} {self.hashes.shape}")
        detail = np.zeros(len(self.times), np.float32) if self.detail is None else np.asarray(self.detail, np.float32)
        if detail.shape != (len(self.times),):
            raise ValueError(f"fingerprint detail must have shape ({len(self.times)},), got {detail.shape}")
        object.__setattr__(self, "detail", detail)

    def __len__(self) -> int:
        return len(self.times)

    @property
    def frame_hashes(self) -> np.ndarray:
        return self.hashes[:, 0]

    @property
    def mirrored_hashes(self) -> np.ndarray:
        return self.hashes[:, 1]

    @property
    def view_hashes(self) -> np.ndarray:
        """(n, 1 + len(WINDOWS)): the whole frame and its crop windows, as a copy of this clip may show them."""
        return self.hashes[:, VIEW_COLUMNS]

    def to_frame(self, clip_id: str) -> pd.DataFrame:
        """Parquet-friendly rows: clip_id, t, duration, detail, then one uint64 column per hash."""
        frame = pd.DataFrame({"clip_id": clip_id, "t": self.times, "duration": self.duration, "detail": self.detail})
        for k, name in enumerate(HASH_COLUMNS):
            frame[name] = self.hashes[:, k]
        return frame


def sample_frames(path: Path, sample_fps: float = SAMPLE_FPS, size: int = DECODE_SIZE
                  ) -> tuple[np.ndarray, np.ndarray, float]:
    """(times, grey frames (n, size, size) uint8, duration) of one frame per 1/sample_fps seconds.

    Every frame is decoded (H.264 needs its references) with FFmpeg's threads, but only the sampled ones are
    scaled to ``size`` (area interpolation, in C) and converted to numpy.
    """
    step = 1.0 / sample_fps
    times, frames = [], []
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as error:
        raise ValueError(f"{path}: not a readable video ({error})") from error
    with container:
        if not container.streams.video:
            raise ValueError(f"{path}: has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        first = last = None
        next_t = 0.0
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * frame.time_base)
                first = t if first is None else first
                t -= first
                last = t
                if t + 1e-6 < next_t:
                    continue
                next_t = (math.floor(t / step + 1e-6) + 1) * step
                times.append(t)
                frames.append(frame.to_ndarray(width=size, height=size, format="gray", interpolation="AREA"))
        except av.error.FFmpegError as error:
            raise ValueError(f"{path}: decoding failed after {len(frames)} sampled frames ({error})") from error
    rate = float(stream.average_rate) if stream.average_rate else sample_fps
    decoded = 0.0 if last is None else last + 1.0 / rate
    indexed = container.format.name in INDEXED_FORMATS and stream.duration
    declared = float(stream.duration * stream.time_base) if indexed else None
    if declared is not None and decoded < declared - TRUNCATION_TOLERANCE_S:
        raise ValueError(f"{path}: truncated: decoded {decoded:.2f} s of the {declared:.2f} s its container declares")
    if not frames:
        return np.zeros(0), np.zeros((0, size, size), np.uint8), 0.0
    return np.asarray(times), np.stack(frames), decoded


def _flat_run(flat: np.ndarray) -> int:
    """Length of the run of True at the start of ``flat``."""
    return int(np.argmin(flat)) if not flat.all() else len(flat)


def _paired(near: int, far: int) -> tuple[int, int]:
    """Bars come in pairs (top+bottom, left+right); a one-sided flat band is picture, e.g. a dark sky."""
    if near == 0 or far == 0:
        return 0, 0
    limit = min(near, far) + 2
    return min(near, limit), min(far, limit)


def content_box(frames: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the picture inside letterbox/pillarbox bars shared by all frames.

    A bar line is dark and flat in every frame: most of its pixels (a channel logo may sit on a bar) within a few
    grey levels of the line's median, and that median constant over time.
    """
    f = frames.astype(np.float32)
    h, w = f.shape[1:]

    def flat_lines(axis: int) -> np.ndarray:  # axis 2: rows, axis 1: columns
        median = np.median(f, axis=axis, keepdims=True)
        mostly_flat = (np.abs(f - median) <= BORDER_MAX_STD).mean(axis=axis) >= 0.85
        level = median.squeeze(axis)
        return mostly_flat.all(axis=0) & (np.ptp(level, axis=0) <= BORDER_MAX_STD) & (level.max(axis=0) <= BORDER_MAX_MEAN)

    rows, cols = flat_lines(2), flat_lines(1)
    cap_h, cap_w = int(BORDER_MAX_SHARE * h), int(BORDER_MAX_SHARE * w)
    top, bottom = _paired(min(_flat_run(rows), cap_h), min(_flat_run(rows[::-1]), cap_h))
    left, right = _paired(min(_flat_run(cols), cap_w), min(_flat_run(cols[::-1]), cap_w))
    return top, h - bottom, left, w - right


def _window_images(frames: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """(n, 1 + len(WINDOWS), 32, 32): the content box and each crop window, area-averaged to 32 x 32."""
    top, bottom, left, right = box
    h, w = bottom - top, right - left
    views = [(0.0, 0.0, 0.0, 0.0), *WINDOWS.values()]
    rows = np.stack([area_weights(top + t * h, bottom - b * h, HASH_INPUT, frames.shape[1]) for _, t, _, b in views])
    cols = np.stack([area_weights(left + l * w, right - r * w, HASH_INPUT, frames.shape[2]) for l, _, r, _ in views])
    f = frames.astype(np.float32)[:, None]
    return rows.astype(np.float32)[None] @ f @ cols.astype(np.float32).transpose(0, 2, 1)[None]


def _bits_to_uint64(bits: np.ndarray) -> np.ndarray:
    return np.packbits(bits, axis=-1, bitorder="big").view(">u8")[..., 0].astype(np.uint64)


def _phash_from_dct(coeffs: np.ndarray) -> np.ndarray:
    """64 bits: the 8x8 lowest DCT frequencies (DC replaced by the (0, 8) term) above their median."""
    low = coeffs[..., :8, :8].reshape(*coeffs.shape[:-2], 64).copy()
    low[..., 0] = coeffs[..., 0, 8]
    return _bits_to_uint64(low > np.median(low, axis=-1, keepdims=True))


def hash_images(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """pHashes of (..., 32, 32) images and of their mirror images (odd horizontal frequencies change sign)."""
    coeffs = dctn(images, axes=(-2, -1), norm="ortho")
    mirrored = coeffs * np.where(np.arange(coeffs.shape[-1]) % 2 == 1, -1.0, 1.0).astype(coeffs.dtype)
    return _phash_from_dct(coeffs), _phash_from_dct(mirrored)


def spatial_detail(images: np.ndarray) -> np.ndarray:
    """Mean absolute difference of neighbouring pixels of (..., 32, 32) images, both directions averaged."""
    across = np.abs(np.diff(images, axis=-1)).mean(axis=(-2, -1))
    down = np.abs(np.diff(images, axis=-2)).mean(axis=(-2, -1))
    return ((across + down) / 2.0).astype(np.float32)


def fingerprint_frames(times: np.ndarray, frames: np.ndarray, duration: float) -> Fingerprint:
    """Fingerprint of decoded grey frames: bars stripped, flat frames dropped, every view hashed."""
    empty = Fingerprint(np.zeros(0), np.zeros((0, len(HASH_COLUMNS)), np.uint64), duration)
    if len(frames) == 0:
        return empty
    top, bottom, left, right = content_box(frames)
    content = frames[:, top:bottom, left:right].astype(np.float32)
    keep = content.reshape(len(frames), -1).std(axis=1) >= MIN_FRAME_STD
    if not keep.any():
        return empty
    views = _window_images(frames[keep], (top, bottom, left, right))
    plain, mirrored = hash_images(views)
    hashes = np.concatenate([plain[:, :1], mirrored[:, :1], plain[:, 1:]], axis=1)
    return Fingerprint(np.asarray(times, np.float64)[keep], np.ascontiguousarray(hashes), float(duration),
                       spatial_detail(views[:, 0]))


def fingerprint_video(path: Path, sample_fps: float = SAMPLE_FPS) -> Fingerprint:
    """Fingerprint of a video file of any length, container or codec that PyAV reads."""
    times, frames, duration = sample_frames(Path(path), sample_fps)
    return fingerprint_frames(times, frames, duration)
