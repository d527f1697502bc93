"""Procedural, deterministic pixels for the sandbox platform's videos.

The action class fixes the MOTION (trajectory family, period, direction, number of moving parts); each video's
own seed fixes the APPEARANCE (background, colours, sizes, placement, speed jitter). A model can therefore only
tell classes apart by how things move, which is what a small 3D-conv net should learn. Around the action the
footage looks like real uploads (`_Footage`): a handheld or panning camera, cuts to other places, moving
backgrounds, title cards and captions; a share of videos is instead a near-still tripod shot of a richly textured
place. So a localizer cannot take "whatever moves" for the action, nor a deduplicator "flat" for "uninformative".

Everything here is pure numpy + PyAV; the same spec always yields the same frames and (see `encode_mp4`) the same
MP4 bytes in every process.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from resources.processes import pid_alive

DATA_DIR = Path(__file__).with_name("data")

FAMILIES = (
    "oscillate", "orbit", "bounce", "stack", "rotate_bar", "spin", "traverse",
    "arc", "pendulum", "burst", "jab", "scrub", "square", "zigzag",
)
TAU = 2.0 * math.pi


def stable_int(text: str) -> int:
    """A 64-bit integer from text that, unlike hash(), is the same in every process."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


@dataclass(frozen=True)
class Motion:
    """How the action of one class moves; shared by every video of the class."""

    family: str
    period: float      # seconds per cycle
    parts: int         # number of moving parts
    direction: float   # degrees
    amplitude: float   # fraction of frame height
    spin: int          # +1 or -1: sense of rotation / travel


@functools.cache
def _motion_overrides() -> dict[str, Motion]:
    raw = json.loads((DATA_DIR / "motions.json").read_text(encoding="utf-8"))
    return {label: Motion(**spec) for label, spec in raw.items() if not label.startswith("_")}


def class_motion(label: str) -> Motion:
    """The class's motion: hand-picked for demo classes, otherwise derived from the class name."""
    override = _motion_overrides().get(label)
    if override is not None:
        return override
    rng = np.random.default_rng(stable_int("motion/" + label))
    return Motion(
        family=FAMILIES[int(rng.integers(len(FAMILIES)))],
        period=float(rng.uniform(0.35, 2.2)),
        parts=int(rng.integers(1, 5)),
        direction=float(rng.uniform(0.0, 180.0)),
        amplitude=float(rng.uniform(0.15, 0.4)),
        spin=int(rng.choice([-1, 1])),
    )


@dataclass(frozen=True)
class Scene:
    """An original video: a seeded look, plus the class motion during [action_start, action_end) seconds."""

    look_seed: int
    width: int
    height: int
    fps: int
    n_frames: int
    motion: Motion | None = None
    action_start: float = 0.0
    action_end: float = 0.0


@dataclass(frozen=True)
class Transform:
    """What a re-uploader did to someone else's video before uploading it again."""

    width: int
    height: int
    mirror: bool = False
    crop: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # share cut from left, top, right, bottom
    pad: float = 0.0              # share of output height given to black letterbox bars (split top/bottom)
    brightness: float = 0.0       # added to every channel (0..255 scale)
    contrast: float = 1.0         # gain around mid-grey
    logo_corner: int | None = None  # 0..3 clockwise from top-left: a small opaque channel logo
    trim_frames: int = 0          # frames dropped from the start of the source
    crf: int = 23

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, raw: str) -> Transform:
        fields = json.loads(raw)
        return cls(**{**fields, "crop": tuple(fields["crop"])})


@dataclass(frozen=True)
class Reupload:
    source: Scene
    transform: Transform

    @property
    def n_frames(self) -> int:
        return self.source.n_frames - self.transform.trim_frames


@dataclass(frozen=True)
class Cut:
    """`n_frames` frames of `scene` starting at its frame `first_frame`."""

    scene: Scene
    first_frame: int
    n_frames: int


@dataclass(frozen=True)
class Compilation:
    cuts: tuple[Cut, ...]
    width: int
    height: int
    fps: int

    @property
    def n_frames(self) -> int:
        return sum(cut.n_frames for cut in self.cuts)


MediaSpec = Scene | Reupload | Compilation


STILL_SHARE = 0.2       # videos filmed from a tripod in one richly textured place: near-still outside the action
CAMERA_MARGIN = 0.25    # share of each frame side the camera may move into, each way


class _Look:
    """Per-video appearance drawn from the video's own seed. The place is larger than the frame: the camera
    looks at a part of it (centred: `margin` pixels in from the top-left)."""

    def __init__(self, scene: Scene):
        rng = np.random.default_rng(scene.look_seed)
        w, h = scene.width, scene.height
        self.margin = (int(w * CAMERA_MARGIN), int(h * CAMERA_MARGIN))
        self.still = bool(rng.random() < STILL_SHARE)
        canvas = (w + 2 * self.margin[0], h + 2 * self.margin[1])
        self.background = _texture(rng, *canvas) if self.still else _background(rng, *canvas)
        self.colours = rng.integers(0, 256, size=(8, 3), dtype=np.uint8)
        self.radius = max(2.0, h * rng.uniform(0.05, 0.09))
        self.cx = w * rng.uniform(0.4, 0.6)
        self.cy = h * rng.uniform(0.42, 0.58)
        self.amp_scale = rng.uniform(0.85, 1.15)
        self.period_scale = rng.uniform(0.88, 1.12)
        self.direction_jitter = rng.uniform(-10.0, 10.0)
        self.phase = rng.uniform(0.0, 1.0)
        n_idle = int(rng.integers(1, 5))
        self.idle_base = rng.uniform([0.15 * w, 0.2 * h], [0.85 * w, 0.8 * h], size=(n_idle, 2))
        self.idle_periods = rng.uniform(6.0, 14.0, size=(n_idle, 2))
        self.idle_phases = rng.uniform(0.0, TAU, size=(n_idle, 2))


def _background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A gradient between two random colours, a few static rectangles and a fixed texture."""
    c0, c1 = rng.uniform(0, 255, size=(2, 3))
    angle = rng.uniform(0, TAU)
    yy, xx = np.mgrid[0:h, 0:w]
    ramp = (xx * math.cos(angle) + yy * math.sin(angle)).astype(np.float32)
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1.0)
    img = c0[None, None, :] * (1 - ramp[..., None]) + c1[None, None, :] * ramp[..., None]
    for _ in range(int(rng.integers(2, 7))):
        x0, x1 = sorted(rng.integers(0, w, size=2))
        y0, y1 = sorted(rng.integers(0, h, size=2))
        img[y0:y1 + 1, x0:x1 + 1] = rng.uniform(0, 255, size=3)
    img += rng.normal(0.0, 6.0, size=(h, w, 1))
    return np.clip(img, 0, 255).astype(np.uint8)


def _texture(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Busy detail at several scales (foliage, brickwork, a far crowd, a bookshelf): a grating plus blocky noise
    between two contrasting colours. Unlike a gradient background no part of it is flat."""
    yy, xx = np.mgrid[0:h, 0:w]
    angle, frequency = rng.uniform(0.0, TAU), rng.uniform(0.2, 0.8)
    img = 0.3 * (0.5 + 0.5 * np.sin(frequency * (xx * math.cos(angle) + yy * math.sin(angle))))
    for cell, weight in ((1, 0.2), (3, 0.3), (9, 0.2)):
        coarse = rng.random((-(-h // cell), -(-w // cell)))
        img += weight * coarse.repeat(cell, axis=0).repeat(cell, axis=1)[:h, :w]
    dark, light = rng.uniform(0, 100, size=3), rng.uniform(155, 255, size=3)
    if rng.random() < 0.5:
        dark, light = light, dark
    return (dark + (light - dark) * img[..., None]).astype(np.uint8)


Point = tuple[float, float, int, float]  # x, y, colour index, radius scale


def _action_points(m: Motion, look: _Look, t: float, w: int, h: int) -> list[Point]:
    """Where the class's moving parts are at time t (seconds since the action started)."""
    amp = m.amplitude * h * look.amp_scale
    u = t / (m.period * look.period_scale) + look.phase
    theta = math.radians(m.direction + look.direction_jitter)
    cos_t, sin_t = math.cos(theta), math.sin(theta)
    cx, cy, r, n, s = look.cx, look.cy, look.radius, m.parts, m.spin
    spread = [k - (n - 1) / 2 for k in range(n)]
    fam = m.family
    if fam == "oscillate":
        pts = []
        for k, off in enumerate(spread):
            d = amp * math.sin(TAU * (u + 0.5 * k))
            o = off * 2.5 * r
            pts.append((cx + d * cos_t - o * sin_t, cy + d * sin_t + o * cos_t, k, 1.0))
        return pts
    if fam == "orbit":
        return [(cx + amp * math.cos(s * TAU * u + TAU * k / n), cy + amp * math.sin(s * TAU * u + TAU * k / n), k, 1.0)
                for k in range(n)]
    if fam == "bounce":
        return [(cx + off * 3 * r, cy + amp / 2 - amp * abs(math.sin(math.pi * (u + 0.25 * k))), k, 1.0)
                for k, off in enumerate(spread)]
    if fam == "stack":
        items = n + 1
        cycle = u % (items + 1)
        placed = int(cycle)
        base = cy + amp
        pts = [(cx, base - i * 1.9 * r, i, 1.0) for i in range(min(placed, items))]
        if placed < items:
            frac = cycle - placed
            target = base - placed * 1.9 * r
            pts.append((cx, (cy - amp) + (target - (cy - amp)) * frac * frac, placed, 1.0))
        return pts
    if fam in ("rotate_bar", "spin"):
        angle = theta + (s * TAU * u if fam == "spin" else 0.9 * math.sin(TAU * u))
        count = max(n, 3)
        pts = [(cx + amp * (2 * j / (count - 1) - 1) * math.cos(angle),
                cy + amp * (2 * j / (count - 1) - 1) * math.sin(angle), 0, 1.0) for j in range(count)]
        if fam == "spin":
            pts[0] = (*pts[0][:2], 1, 1.4)
            pts[-1] = (*pts[-1][:2], 2, 1.4)
        return pts
    if fam == "traverse":
        f = u % 1.0
        x = -r + f * (w + 2 * r)
        if s < 0:
            x = w - x
        return [(x - s * k * 2.2 * r, cy + amp * 0.3 * math.sin(TAU * 2 * f), k, 1.0) for k in range(n)]
    if fam == "arc":
        f = u % 1.0
        x = cx + s * (2 * f - 1) * amp
        return [(x - s * k * 2 * r, cy + amp * (3.0 * (f - 0.3) ** 2 - 0.5), k, 1.0) for k in range(n)]
    if fam == "pendulum":
        angle = 0.8 * math.sin(TAU * u)
        length = 1.6 * amp
        return [(cx + length * (j + 1) / n * math.sin(angle), (cy - amp) + length * (j + 1) / n * math.cos(angle),
                 j, 1.0) for j in range(n)]
    if fam == "burst":
        cycle = math.floor(u)
        f = u - cycle
        ox = cx + 0.8 * amp * math.sin(cycle * 2.39 + look.phase * 7)
        oy = cy - 0.4 * amp + 0.3 * amp * math.cos(cycle * 1.7)
        return [(ox + f * amp * math.cos(TAU * k / n), oy + f * amp * math.sin(TAU * k / n), k % 8, 1.0 - 0.6 * f)
                for k in range(n)]
    if fam == "jab":
        return [(cx - 0.5 * amp * cos_t + amp * max(0.0, math.sin(TAU * (u + k / n))) ** 3 * cos_t,
                 cy + off * 3 * r + amp * max(0.0, math.sin(TAU * (u + k / n))) ** 3 * sin_t, k, 1.0)
                for k, off in enumerate(spread)]
    if fam == "scrub":
        return [(cx + off * 2.5 * r + amp * math.cos(s * TAU * u + k), cy - 1.5 * amp + amp * math.sin(s * TAU * u + k),
                 k, 0.8) for k, off in enumerate(spread)]
    if fam == "square":
        pts = []
        for k in range(n):
            f = (s * u + k / n) % 1.0
            side, g = divmod(4 * f, 1.0)
            corners = ((-1, -1), (1, -1), (1, 1), (-1, 1), (-1, -1))
            (x0, y0), (x1, y1) = corners[int(side)], corners[int(side) + 1]
            pts.append((cx + amp * (x0 + (x1 - x0) * g), cy + amp * (y0 + (y1 - y0) * g), k, 1.0))
        return pts
    if fam == "zigzag":
        f = (u / 3.0) % 1.0
        tri = 4 * abs((u % 1.0) - 0.5) - 1
        return [(f * w - k * 2.2 * r, cy + amp * tri, k, 1.0) for k in range(n)]
    raise ValueError(f"unknown motion family {fam!r}")


def _idle_points(look: _Look, t: float) -> list[Point]:
    """Non-action content: the same objects standing still or drifting with multi-second periods."""
    if look.still:
        t = 0.0
    offsets = 0.08 * np.sin(TAU * t / look.idle_periods + look.idle_phases) * look.idle_base.max()
    return [(float(x), float(y), k, 1.0) for k, (x, y) in enumerate(look.idle_base + offsets)]


@functools.lru_cache(maxsize=64)
def _disc(radius: int) -> np.ndarray:
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return (xx * xx + yy * yy) <= radius * radius + radius


def _stamp(img: np.ndarray, x: float, y: float, radius: float, colour: np.ndarray) -> None:
    rad = max(1, int(round(radius)))
    mask = _disc(rad)
    h, w = img.shape[:2]
    xi, yi = int(round(x)), int(round(y))
    x0, y0, x1, y1 = xi - rad, yi - rad, xi + rad + 1, yi + rad + 1
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if cx0 >= cx1 or cy0 >= cy1:
        return
    sub = mask[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
    img[cy0:cy1, cx0:cx1][sub] = colour


# Footage around the action: real uploads are not one still scene with a burst of motion. Everything below is
# drawn from the video's seed and stays outside the action, except that the action shot itself has a steadier
# handheld camera (and sometimes a moving background).
CARD_S = (1.5, 4.0)     # seconds of an opening or closing title card
SHOT_S = (1.5, 9.0)     # seconds of a shot away from the action, between scene cuts
FADE_S, SLIDE_S = 0.3, 0.8  # a card fades in from and out to black; its text slides in from the left
TRIPOD, HANDHELD, PAN = range(3)


@dataclass(frozen=True)
class _Strip:
    """Rows [top, top + texture height) showing `texture`, a periodic strip, moved by `speed` pixels a second or
    swaying `sway` pixels back and forth: a moving background band (traffic, water, foliage) or a caption."""

    top: int
    texture: np.ndarray
    speed: float = 0.0
    sway: float = 0.0
    sway_period: float = 1.0

    def paint(self, img: np.ndarray, t: float, dx: int = 0, dy: int = 0) -> None:
        """Draw at time t with the camera moved (dx, dy) pixels from where the strip was placed."""
        h, w = img.shape[:2]
        offset = int(round(self.speed * t + self.sway * math.sin(TAU * t / self.sway_period))) + dx
        top = self.top - dy
        r0, r1 = max(top, 0), min(top + self.texture.shape[0], h)
        if r0 < r1:
            cols = (np.arange(w) + offset) % self.texture.shape[1]
            img[r0:r1] = self.texture[r0 - top:r1 - top][:, cols]


@dataclass(frozen=True)
class _Shot:
    """[start, end) seconds of one camera set-up. `place` indexes the footage's places (0: the video's own, where
    its objects and its action are), -1 is a title card. The camera's top-left corner in the place moves from
    (x0, y0) to (x1, y1) over the shot, plus a handheld shake of `shake` pixels."""

    start: float
    end: float
    place: int
    camera: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    shake: float = 0.0
    band: bool = False
    caption: bool = False


def _glyphs(rng: np.random.Generator, n_chars: int, scale: int = 1) -> np.ndarray:
    """A line of blocky 'text' as a boolean mask (5 x 4 pixels a character, times scale): random 3x5 glyphs with
    a blank column between characters and spaces between words."""
    glyphs = rng.random((n_chars, 5, 3)) < 0.55
    glyphs[rng.random(n_chars) < 0.18] = False
    line = np.concatenate([glyphs, np.zeros((n_chars, 5, 1), dtype=bool)], axis=2).transpose(1, 0, 2)
    line = line.reshape(5, n_chars * 4)
    return line.repeat(scale, axis=0).repeat(scale, axis=1)


def _paste(mask: np.ndarray, glyphs: np.ndarray, top: int, left: int) -> None:
    h, w = mask.shape
    gh, gw = min(glyphs.shape[0], h - top), min(glyphs.shape[1], w - left)
    mask[top:top + gh, left:left + gw] |= glyphs[:gh, :gw]


def _title_card(rng: np.random.Generator, w: int, h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The channel's card: a plain or two-tone background, one to three lines of text, and the text's colour."""
    card = np.empty((h, w, 3), dtype=np.uint8)
    card[:] = rng.integers(0, 256, size=3)
    if rng.random() < 0.5:
        card[int(h * rng.uniform(0.3, 0.7)):] = rng.integers(0, 256, size=3)
    mask = np.zeros((h, w), dtype=bool)
    lines = int(rng.integers(1, 4))
    scale = max(1, h // 60)
    for k in range(lines):
        n_chars = int(rng.integers(5, max(6, (w - 8) // (4 * scale))))
        top = int((h - lines * 7 * scale) / 2) + k * 7 * scale
        _paste(mask, _glyphs(rng, n_chars, scale), top, max(2, (w - n_chars * 4 * scale) // 2))
    return card, mask, rng.integers(0, 256, size=3).astype(np.uint8)


def _caption(rng: np.random.Generator, w: int, h: int) -> _Strip:
    """A lower-third caption (a box with a line of text) or a news ticker scrolling along the bottom."""
    height = max(7, h // 10)
    ticker = rng.random() < 0.5
    length = 3 * w if ticker else w
    strip = np.empty((height, length, 3), dtype=np.uint8)
    strip[:] = rng.integers(0, 90, size=3)
    n_chars = (length - 8) // 4 if ticker else int(rng.integers(6, max(7, (w - 16) // 4)))
    mask = np.zeros((height, length), dtype=bool)
    _paste(mask, _glyphs(rng, n_chars), (height - 5) // 2, 4)
    strip[mask] = rng.integers(170, 256, size=3)
    speed = float(rng.uniform(25.0, 60.0)) if ticker else 0.0
    return _Strip(top=h - height - (1 if ticker else h // 12), texture=strip, speed=speed)


def _band(rng: np.random.Generator, w: int, h: int) -> _Strip:
    """A moving part of a place: a textured band that scrolls past (a road, a river) or sways (foliage)."""
    height = int(h * rng.uniform(0.12, 0.3))
    texture = _texture(rng, 2 * w, height)
    top = int(h * rng.uniform(0.05, 0.95 - height / h))
    if rng.random() < 0.5:
        return _Strip(top, texture, speed=float(rng.choice([-1, 1]) * rng.uniform(15.0, 60.0)))
    return _Strip(top, texture, sway=float(rng.uniform(2.0, 8.0)), sway_period=float(rng.uniform(0.8, 3.0)))


class _Footage:
    """The video's shots and what each shows: where the camera is at each moment, places, bands, captions."""

    def __init__(self, scene: Scene, look: _Look):
        rng = np.random.default_rng([scene.look_seed, 1])
        w, h = scene.width, scene.height
        mx, my = self.margin = look.margin
        self.places = [look.background]
        self.bands: list[_Strip | None] = [None]
        if not look.still:
            for _ in range(int(rng.integers(1, 4))):
                draw = _texture if rng.random() < 0.5 else _background
                self.places.append(draw(rng, w + 2 * mx, h + 2 * my))
            self.bands = [_band(rng, w, h) if rng.random() < 0.5 else None for _ in self.places]
            self.card = _title_card(rng, w, h)
            self.caption = _caption(rng, w, h)
            frequencies = rng.uniform([0.3, 1.5], [1.2, 4.0], size=(2, 2))  # per axis: a slow and a fast sway
            phases = rng.uniform(0.0, TAU, size=(2, 2))
            self.shake = [list(zip(f.tolist(), p.tolist())) for f, p in zip(frequencies, phases)]
        self.shots = self._plan(rng, scene, look.still)
        starts = np.array([shot.start for shot in self.shots])
        self.shot_at = np.searchsorted(starts, np.arange(scene.n_frames) / scene.fps + 1e-9, side="right") - 1

    def _plan(self, rng: np.random.Generator, scene: Scene, still: bool) -> list[_Shot]:
        """Opening card, shots before the action, the action's shot, shots after it, closing card."""
        duration = scene.n_frames / scene.fps
        mx, my = self.margin
        if still:
            return [_Shot(0.0, duration, 0, (mx, my, mx, my))]
        acting = scene.motion is not None and scene.action_end > scene.action_start
        a0, a1 = (scene.action_start, scene.action_end) if acting else (duration, duration)
        opening, closing = rng.uniform(*CARD_S, size=2)
        wants_opening, wants_closing = rng.random(2) < (0.35, 0.25)
        begin = float(opening) if wants_opening and opening + 1.0 <= a0 else 0.0
        finish = duration - float(closing) if wants_closing and duration - closing >= max(a1, begin) + 1.0 else duration
        shots = [_Shot(0.0, begin, -1)] if begin else []
        if acting:
            lead, tail = rng.uniform(0.0, 6.0, size=2)
            s0, s1 = max(begin, a0 - lead), min(finish, a1 + tail)
            x, y = rng.uniform(0.5 * mx, 1.5 * mx), rng.uniform(0.5 * my, 1.5 * my)
            dx, dy = rng.uniform(-0.25, 0.25, size=2) * (mx, my)
            action = _Shot(float(s0), float(s1), 0, (float(x), float(y), float(x + dx), float(y + dy)),
                           shake=float(rng.uniform(0.0, 1.5)), band=bool(self.bands[0] is not None and rng.random() < 0.3))
            shots += self._away(rng, begin, s0) + [action] + self._away(rng, s1, finish)
        else:
            shots += self._away(rng, begin, finish)
        if finish < duration:
            shots.append(_Shot(finish, duration, -1))
        return shots

    def _away(self, rng: np.random.Generator, start: float, end: float) -> list[_Shot]:
        """Shots between `start` and `end` away from the action: scene cuts between the places, each shot with
        its own camera (tripod, handheld or a pan across the place) and maybe a moving band or a caption."""
        mx, my = self.margin
        shots, t = [], start
        while end - t > 1e-6:
            length, u_mode, u_band, u_caption, shake = rng.uniform((SHOT_S[0], 0, 0, 0, 1.0), (SHOT_S[1], 1, 1, 1, 4.0))
            stop = end if end - (t + length) < 1.0 else t + length
            place = int(rng.integers(len(self.places)))
            x0, x1 = rng.uniform(0, 2 * mx, size=2)
            y0, y1 = rng.uniform(0, 2 * my, size=2)
            mode = TRIPOD if u_mode < 0.25 else HANDHELD if u_mode < 0.65 else PAN
            if mode != PAN:
                x1, y1 = x0, y0
            shots.append(_Shot(float(t), float(stop), place, (float(x0), float(y0), float(x1), float(y1)),
                               shake=float(shake) if mode == HANDHELD else 0.0,
                               band=bool(self.bands[place] is not None and u_band < 0.7),
                               caption=bool(u_caption < 0.3)))
            t = stop
        return shots

    def camera(self, shot: _Shot, t: float) -> tuple[int, int]:
        """The camera's top-left corner in the place at time t, in whole pixels."""
        mx, my = self.margin
        x0, y0, x1, y1 = shot.camera
        f = (t - shot.start) / (shot.end - shot.start)
        x, y = x0 + (x1 - x0) * f, y0 + (y1 - y0) * f
        if shot.shake:
            x, y = x + shot.shake * self._sway(0, t), y + shot.shake * self._sway(1, t)
        return min(max(int(round(x)), 0), 2 * mx), min(max(int(round(y)), 0), 2 * my)

    def _sway(self, axis: int, t: float) -> float:
        """A handheld camera's sway along one axis at time t, within [-1, 1]."""
        (slow, slow_phase), (fast, fast_phase) = self.shake[axis]
        return 0.6 * math.sin(TAU * slow * t + slow_phase) + 0.4 * math.sin(TAU * fast * t + fast_phase)

    def card_frame(self, shot: _Shot, t: float) -> np.ndarray:
        card, mask, colour = self.card
        img = card.copy()
        slide = int(round(max(0.0, 1.0 - (t - shot.start) / SLIDE_S) * card.shape[1]))
        img[:, :card.shape[1] - slide][mask[:, slide:]] = colour
        alpha = min(1.0, (t - shot.start) / FADE_S, (shot.end - t) / FADE_S)
        return img if alpha >= 1.0 else (img * max(alpha, 0.0)).astype(np.uint8)


class ScenePainter:
    """Draws frame i of a scene; built once per scene (places, shots and look are precomputed)."""

    def __init__(self, scene: Scene):
        self.scene = scene
        self.look = _Look(scene)
        self.footage = _Footage(scene, self.look)

    def frame(self, index: int) -> np.ndarray:
        sc, look, footage = self.scene, self.look, self.footage
        t = index / sc.fps
        shot = footage.shots[footage.shot_at[index]]
        if shot.place < 0:
            return footage.card_frame(shot, t)
        ox, oy = footage.camera(shot, t)
        img = footage.places[shot.place][oy:oy + sc.height, ox:ox + sc.width].copy()
        dx, dy = ox - footage.margin[0], oy - footage.margin[1]
        if shot.band:
            footage.bands[shot.place].paint(img, t, dx, dy)
        if sc.motion is not None and sc.action_start <= t < sc.action_end:
            points = _action_points(sc.motion, look, t - sc.action_start, sc.width, sc.height)
        else:
            points = _idle_points(look, t) if shot.place == 0 else []
        for x, y, colour, scale in points:
            _stamp(img, x - dx, y - dy, look.radius * scale, look.colours[colour % len(look.colours)])
        if shot.caption:
            footage.caption.paint(img, t)
        return img


def resize_nearest(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Nearest-neighbour resize: exact and deterministic, cheap at these sizes."""
    h, w = img.shape[:2]
    rows = np.minimum((np.arange(height) + 0.5) * h / height, h - 1).astype(np.intp)
    cols = np.minimum((np.arange(width) + 0.5) * w / width, w - 1).astype(np.intp)
    return img[rows[:, None], cols[None, :]]


def apply_transform(img: np.ndarray, tr: Transform) -> np.ndarray:
    """The re-uploader's edit of one source frame: crop, mirror, rescale, letterbox, grade, logo."""
    h, w = img.shape[:2]
    left, top, right, bottom = tr.crop
    img = img[int(round(top * h)):h - int(round(bottom * h)), int(round(left * w)):w - int(round(right * w))]
    if tr.mirror:
        img = img[:, ::-1]
    bar = int(round(tr.pad * tr.height / 2))
    out = np.zeros((tr.height, tr.width, 3), dtype=np.uint8)
    out[bar:tr.height - bar] = resize_nearest(img, tr.width, tr.height - 2 * bar)
    if tr.brightness or tr.contrast != 1.0:
        graded = (out.astype(np.float32) - 128.0) * tr.contrast + 128.0 + tr.brightness
        out = np.clip(graded, 0, 255).astype(np.uint8)
    if tr.logo_corner is not None:
        size = max(4, tr.height // 8)
        ys = slice(2, 2 + size) if tr.logo_corner in (0, 1) else slice(tr.height - 2 - size, tr.height - 2)
        xs = slice(tr.width - 2 - size, tr.width - 2) if tr.logo_corner in (1, 2) else slice(2, 2 + size)
        out[ys, xs] = (240, 240, 240)
        out[ys, xs][size // 4:-(size // 4), size // 4:-(size // 4)] = (200, 30, 30)
    return out


def iter_frames(spec: MediaSpec) -> Iterator[np.ndarray]:
    """Every RGB frame of a video, in order."""
    if isinstance(spec, Scene):
        painter = ScenePainter(spec)
        for i in range(spec.n_frames):
            yield painter.frame(i)
    elif isinstance(spec, Reupload):
        painter = ScenePainter(spec.source)
        for i in range(spec.n_frames):
            yield apply_transform(painter.frame(i + spec.transform.trim_frames), spec.transform)
    else:
        for cut in spec.cuts:
            painter = ScenePainter(cut.scene)
            for i in range(cut.first_frame, cut.first_frame + cut.n_frames):
                img = painter.frame(i)
                if img.shape[:2] != (spec.height, spec.width):
                    img = resize_nearest(img, spec.width, spec.height)
                yield img


def spec_geometry(spec: MediaSpec) -> tuple[int, int, int, int]:
    """(width, height, fps, crf) the spec is encoded with."""
    if isinstance(spec, Reupload):
        return spec.transform.width, spec.transform.height, spec.source.fps, spec.transform.crf
    return spec.width, spec.height, spec.fps, 23


def preview_size(width: int, height: int) -> tuple[int, int]:
    """The low-resolution rendition's size (like a platform's 144p): a quarter of each side, even, >= 16."""
    return tuple(max(16, (side // 4) // 2 * 2) for side in (width, height))


PARTIAL_RE = re.compile(r"^\..+\.(\d+)-\d+\.part$")
STALE_PARTIAL_S = 3600.0  # a live writer touches its file every few frames; one untouched this long is dead


def partial_path(path: Path) -> Path:
    """Where `path` is written before it is renamed into place: hidden, and named after its writer (process,
    thread), so concurrent writers never share one and a dead writer's leftovers can be told apart."""
    return path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.part")


def sweep_stale_partials(folder: Path) -> list[Path]:
    """Delete the `partial_path` files in `folder` whose writer died (a killed render or index build): its
    process is gone, or the file went untouched for STALE_PARTIAL_S. A live writer's file is left alone."""
    swept = []
    for entry in Path(folder).glob(".*.part"):
        match = PARTIAL_RE.match(entry.name)
        if match is None:
            continue
        try:
            stale = (not pid_alive(int(match.group(1)))
                     or time.time() - entry.stat().st_mtime > STALE_PARTIAL_S)
            if stale:
                entry.unlink()
                swept.append(entry)
        except FileNotFoundError:  # its writer finished (renamed it) or another sweeper was first
            continue
    return swept


def encode_mp4(spec: MediaSpec, path: Path, preview: bool = False) -> Path:
    """Render and encode to H.264/yuv420p MP4 with +faststart (moov first, so players can seek over HTTP).

    ``preview`` encodes the low-resolution rendition (frames scaled to ``preview_size``). One encoder thread,
    bit-exact muxing and no macroblock tree make the bytes reproducible; the file appears atomically.
    """
    width, height, fps, crf = spec_geometry(spec)
    full_size = (width, height)
    if preview:
        width, height = preview_size(width, height)
    tmp = partial_path(path)
    try:
        with av.open(str(tmp), mode="w", format="mp4",
                     options={"movflags": "+faststart", "fflags": "+bitexact"}) as container:
            # mbtree=0: x264's AVX-512 macroblock-tree propagation (B-frames) reads buffers it never wrote, so with
            # it a video's pixels depend on what earlier encodes left on the heap (previews of small re-uploads
            # drifted by up to 94 grey levels between two processes, moving the localizer's windows).
            stream = container.add_stream("libx264", rate=fps, options={
                "crf": str(crf), "preset": "veryfast", "threads": "1", "flags": "+bitexact",
                "x264-params": "mbtree=0"})
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.codec_context.gop_size = 2 * fps
            stream.codec_context.thread_count = 1
            for index, rgb in enumerate(iter_frames(spec)):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
                if (width, height) != full_size:
                    frame = frame.reformat(width=width, height=height, interpolation="AREA")
                frame.pts = index
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path

