"""Where in a video its one 10-s clip is cut: localization strategies, chosen by name.

`motion` (default) decodes the platform's cheapest rendition at a few frames a second and a tiny size and picks
the whole-second 10-s window with the most motion energy left once the camera's own motion is taken out: actions
move within the picture, while pans and a shaking hand move all of it, and titles, talking heads and idle
scenery mostly do not move. `fixed` cuts at a given offset. `model` (kinetics_assets/benchmark/scoring.py) picks
the window an I3D checkpoint scores highest for the class; it loads JAX, so it registers itself only when asked for.
Videos shorter than 10 s give the whole video as the window, flagged `short_source`.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

import av
import numpy as np

from kinetics_assets.acquisition.failures import AcquisitionError, FailureCategory
from kinetics_assets.area_average import area_weights
from resources.video_platform import validate_video_id

CLIP_SECONDS = 10
# Platforms report whole-second durations; a decode that stops more than this short of it was cut off.
DURATION_TOLERANCE_S = 1.5


def clip_id(youtube_id: str, start: float, end: float) -> str:
    """The official clip name stem: `{youtube_id}_{start:06d}_{end:06d}` (whole seconds, as torchvision)."""
    return f"{validate_video_id(youtube_id)}_{int(start):06d}_{int(end):06d}"


@dataclass(frozen=True)
class Window:
    """[start, end) seconds (strategies give whole seconds; annotations may not); `short_source`: the video ends
    before the window asked for, so the clip is all of the video from `start` (a video shorter than a clip: all
    of it), and a fetched clip's window ends where its last frame does."""

    start: float
    end: float
    short_source: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end or self.end - self.start > CLIP_SECONDS:
            raise ValueError(f"window [{self.start}, {self.end}) must be non-empty, start >= 0, "
                             f"at most {CLIP_SECONDS} s")


def whole_video_window(duration: float) -> Window:
    """The window to ask for a video shorter than a clip: all of it. Platforms round durations to the second, so
    it asks up to the next whole second; ffmpeg stops at the end of the video, and the clip is recorded and
    named with the end it really has."""
    return Window(0, min(CLIP_SECONDS, math.floor(duration) + 1), short_source=True)


@dataclass(frozen=True)
class SourceVideo:
    """What a strategy may look at: the platform's duration and the cheapest rendition, opened on demand
    (opening counts against the platform's rate budget, so strategies that need no pixels never do)."""

    youtube_id: str
    duration: float | None
    open_preview: Callable[[], AbstractContextManager[av.container.InputContainer]]


class LocalizationStrategy(Protocol):
    name: str

    def localize(self, source: SourceVideo) -> Window: ...


def checked_duration(source: SourceVideo, decoded: float) -> float:
    """The video's duration, once a preview decode of `decoded` seconds shows the preview was not cut off."""
    if source.duration is not None and decoded < source.duration - DURATION_TOLERANCE_S:
        raise AcquisitionError(FailureCategory.INCOMPLETE, f"{source.youtube_id}: preview decode stopped at "
                               f"{decoded:.1f} s of {source.duration:g} s")
    return source.duration if source.duration is not None else decoded


@dataclass(frozen=True)
class FixedStrategy:
    """The window at `offset_s`, moved earlier when the video ends before offset + 10 s."""

    offset_s: int = 0
    name: str = "fixed"

    def __post_init__(self) -> None:
        if self.offset_s < 0:
            raise ValueError(f"fixed offset must be >= 0 s, got {self.offset_s}")

    def localize(self, source: SourceVideo) -> Window:
        if source.duration is None:
            return Window(self.offset_s, self.offset_s + CLIP_SECONDS)
        if source.duration < CLIP_SECONDS:
            return whole_video_window(source.duration)
        start = min(self.offset_s, math.floor(source.duration) - CLIP_SECONDS)
        return Window(start, start + CLIP_SECONDS)


def camera_shifts(pictures: np.ndarray) -> np.ndarray:
    """(rows, columns) shift that best carries each picture onto the next, to a fraction of a pixel: the peak
    of their phase correlation (Hann-windowed, so the pictures' edges do not pin it at zero), refined by a
    parabola through the peak and its neighbours. One row per consecutive pair."""
    n, h, w = pictures.shape
    spectra = np.fft.rfft2(pictures * np.outer(np.hanning(h), np.hanning(w)))
    cross = spectra[1:] * np.conj(spectra[:-1])
    corr = np.fft.irfft2(cross / (np.abs(cross) + 1e-9), s=(h, w))
    peak = np.argmax(corr.reshape(n - 1, -1), axis=1)
    py, px, pair = peak // w, peak % w, np.arange(n - 1)

    def refined(at: np.ndarray, before: np.ndarray, after: np.ndarray, peak: np.ndarray, size: int) -> np.ndarray:
        curve = before - 2 * at + after
        offset = peak + np.where(curve < 0, 0.5 * (before - after) / np.where(curve < 0, curve, -1.0), 0.0)
        return (offset + size / 2) % size - size / 2

    at = corr[pair, py, px]
    return np.stack([refined(at, corr[pair, py - 1, px], corr[pair, (py + 1) % h, px], py, h),
                     refined(at, corr[pair, py, px - 1], corr[pair, py, (px + 1) % w], px, w)], axis=1)


def shifted_interior(a: np.ndarray, dy: float, dx: float, border: int) -> np.ndarray:
    """`a` moved by (dy, dx) pixels (|dy|, |dx| <= border - 1; bilinear between pixels), without its `border`."""
    h, w = a.shape
    iy, ix = math.floor(dy), math.floor(dx)
    fy, fx = dy - iy, dx - ix
    rows = [slice(border - iy - k, h - border - iy - k) for k in (0, 1)]
    cols = [slice(border - ix - k, w - border - ix - k) for k in (0, 1)]
    return ((1 - fy) * ((1 - fx) * a[rows[0], cols[0]] + fx * a[rows[0], cols[1]])
            + fy * ((1 - fx) * a[rows[1], cols[0]] + fx * a[rows[1], cols[1]]))


def residual_energy(a: np.ndarray, b: np.ndarray, shift: np.ndarray) -> float:
    """Mean squared difference between `b` and `a` moved by the camera's `shift`, or not moved if that fits
    better, leaving out a border of an eighth of the width (there a moved camera shows what `a` did not). A
    shift of the border or more is not the camera (it moves less between two samples; an object filling much
    of a flat picture can pull the correlation's peak that far): the pictures are compared as they are."""
    border = max(2, a.shape[1] // 8)
    if min(a.shape) <= 2 * border:  # too small a picture to leave a border out of
        return float(np.mean((b - a) ** 2))
    inner = b[border:-border, border:-border]
    still = float(np.mean((inner - a[border:-border, border:-border]) ** 2))
    if np.abs(shift).max() > border - 1:
        return still
    return min(still, float(np.mean((inner - shifted_interior(a, *shift, border)) ** 2)))


def energy_per_second(samples: Iterable[tuple[float, np.ndarray]]) -> np.ndarray:
    """Motion energy of each whole second: the median, over consecutive samples starting in it, of what moved
    once the camera's motion is taken out (`residual_energy`; each picture less its mean, so a fade is not
    motion). Squaring favours things that move far (an action) over many small slow drifts; the median ignores a
    single scene cut, which is one huge difference, not motion."""
    samples = list(samples)
    if len(samples) < 2:
        return np.zeros(0)
    times = np.array([time_s for time_s, _ in samples])
    pixels = np.stack([frame for _, frame in samples]).astype(np.float32)
    pixels -= pixels.mean(axis=tuple(range(1, pixels.ndim)), keepdims=True)
    diffs = np.array([residual_energy(a, b, shift)
                      for a, b, shift in zip(pixels[:-1], pixels[1:], camera_shifts(pixels))])
    seconds = times[:-1].astype(np.int64)
    energy = np.zeros(int(seconds.max()) + 1)
    for second in np.unique(seconds):
        energy[second] = float(np.median(diffs[seconds == second]))
    return energy


def best_window_start(energy: np.ndarray, duration: float) -> int:
    """The whole-second start of the 10-s window with the most energy; the earliest wins a tie."""
    last_start = math.floor(duration + 1e-6) - CLIP_SECONDS
    if last_start < 0:
        raise ValueError(f"a {duration:g}-s video holds no {CLIP_SECONDS}-s window")
    padded = np.zeros(last_start + CLIP_SECONDS)
    padded[: min(len(energy), len(padded))] = energy[: len(padded)]
    scores = np.convolve(padded, np.ones(CLIP_SECONDS), mode="valid")
    return int(np.argmax(np.round(scores, 9)))


@dataclass(frozen=True)
class MotionStrategy:
    """Highest camera-compensated motion energy from a cheap pass: `sample_fps` frames a second, area-averaged to
    `width` pixels wide in grey (averaging blurs away sub-pixel jitter and compression noise; on sandbox worlds
    32 px beat 64 px)."""

    sample_fps: float = 4.0
    width: int = 32
    name: str = "motion"

    def __post_init__(self) -> None:
        if not 0 < self.sample_fps <= 30 or not 8 <= self.width <= 640:
            raise ValueError(f"motion sampling needs 0 < sample_fps <= 30 and 8 <= width <= 640, "
                             f"got {self.sample_fps}, {self.width}")

    def localize(self, source: SourceVideo) -> Window:
        if source.duration is not None and source.duration < CLIP_SECONDS:
            return whole_video_window(source.duration)
        with source.open_preview() as container:
            samples = list(self._samples(container))
        duration = checked_duration(source, samples[-1][0] + 1.0 / self.sample_fps if samples else 0.0)
        if duration < CLIP_SECONDS:
            return whole_video_window(duration)
        start = best_window_start(energy_per_second(samples), duration)
        return Window(start, start + CLIP_SECONDS)

    def _samples(self, container: av.container.InputContainer) -> Iterable[tuple[float, np.ndarray]]:
        stream = container.streams.video[0]
        # Previews are tiny: threads cost more in hand-offs than they save, and the encoder beside us wants the
        # cores. B-frames are never needed at a few samples a second: skipping them halves the decode or better;
        # deblocking only smooths block edges that the area-averaging to a few pixels smooths anyway (10 % less).
        stream.thread_type = "NONE"
        stream.codec_context.skip_frame = "BIDIR"
        stream.codec_context.options = {"skip_loop_filter": "all"}
        step = 1.0 / self.sample_fps
        resize: tuple[np.ndarray, np.ndarray] | None = None
        next_time = 0.0
        for frame in container.decode(stream):
            if frame.time is None or frame.time + 1e-6 < next_time:
                continue
            next_time = (math.floor(frame.time / step + 1e-6) + 1) * step
            luma = _luma(frame)
            if resize is None:  # the geometry is the first frame's
                h, w = luma.shape
                height = max(2, round(self.width * h / max(w, 1) / 2) * 2)
                resize = (area_weights(0, h, height, h).astype(np.float32),
                          area_weights(0, w, self.width, w).astype(np.float32).T)
            yield float(frame.time), resize[0] @ luma.astype(np.float32) @ resize[1]


# Pixel formats whose first plane is 8-bit luma: the grey picture without any conversion.
_LUMA_FIRST = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21", "gray"}


def _luma(frame: av.VideoFrame) -> np.ndarray:
    """The frame in grey at its own size: the luma plane as it lies in the decoder's buffer when the format
    has one (no copy, no colour conversion: 0.2 ms a frame saved against swscale), else a conversion."""
    if frame.format.name not in _LUMA_FIRST:
        return frame.to_ndarray(format="gray")
    plane = frame.planes[0]
    return np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]


STRATEGIES: dict[str, Callable[..., LocalizationStrategy]] = {"motion": MotionStrategy, "fixed": FixedStrategy}
# Strategies whose module (and its heavy imports) loads only when one is asked for; importing it registers it.
ON_DEMAND = {"model": "kinetics_assets.benchmark.scoring"}


def register_strategy(name: str, factory: Callable[..., LocalizationStrategy]) -> None:
    """Add a strategy (the training stage registers `model` here)."""
    if name in STRATEGIES:
        raise ValueError(f"localization strategy {name!r} is already registered")
    STRATEGIES[name] = factory


def make_strategy(name: str = "motion", **params: object) -> LocalizationStrategy:
    """A strategy by name, e.g. make_strategy("fixed", offset_s=30)."""
    if name in ON_DEMAND and name not in STRATEGIES:
        importlib.import_module(ON_DEMAND[name])
    factory = STRATEGIES.get(name)
    if factory is None:
        raise ValueError(f"unknown localization strategy {name!r}; available: {', '.join(dict.fromkeys([*STRATEGIES, *ON_DEMAND]))}")
    return factory(**params)
