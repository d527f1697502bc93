"""Ground truth of a sandbox world, for tests and evaluation ONLY.

The pipeline must never see this (tests/test_sandbox_truth_isolation.py enforces that no production module
imports it): it answers what a crowd, a dedup step or a link checker is supposed to find out on its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

from resources.sandbox.render import Transform
from resources.sandbox.world import VideoRecord, World, parse_day

MIN_ACTION_SHARE = 0.5  # a window "shows" a class when the action covers at least half of it


@dataclass(frozen=True)
class Span:
    """[start, end) of a video's timeline whose pixels come from `original_id` starting at `original_start`."""

    start: float
    end: float
    original_id: str
    original_start: float


@dataclass(frozen=True)
class Removal:
    on: date
    reason: str


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


class GroundTruth:
    """What every video of `world` really is: label, action timing, provenance, removal, country."""

    def __init__(self, world: World):
        self.world = world

    def _record(self, video_id: str) -> VideoRecord:
        rec = self.world.record(video_id)
        if rec is None:
            raise KeyError(f"unknown video id {video_id!r}")
        return rec

    def ids(self, label: str | None = None, kind: str | None = None) -> list[str]:
        """Every video id (optionally of one class and kind: relevant | distractor | reupload | compilation)."""
        return [rec.id for rec in self.world.iter_records(label=label, kind=kind)]

    def kind(self, video_id: str) -> str:
        return self._record(video_id).kind

    def label(self, video_id: str) -> str | None:
        """The class whose action the video shows somewhere, or None (distractors, action-free copies)."""
        rec = self._record(video_id)
        return rec.label if self.action_segments(video_id) else None

    def action_segment(self, video_id: str) -> tuple[float, float] | None:
        """(start, end) seconds of the action in a single-scene video (relevant or re-upload), else None."""
        rec = self._record(video_id)
        return None if rec.action_start is None else (rec.action_start, rec.action_end)

    def action_segments(self, video_id: str) -> list[tuple[float, float]]:
        """Every stretch of the video's timeline that shows its class's action (compilations: one per cut)."""
        rec = self._record(video_id)
        if rec.kind != "compilation":
            segment = self.action_segment(video_id)
            return [segment] if segment else []
        segments = []
        for span in self.spans(video_id):
            src = self._record(span.original_id)
            if src.action_start is None:
                continue
            lo = max(span.original_start, src.action_start)
            hi = min(span.original_start + (span.end - span.start), src.action_end)
            if hi > lo:
                segments.append((span.start + lo - span.original_start, span.start + hi - span.original_start))
        return segments

    def spans(self, video_id: str) -> list[Span]:
        """Provenance of the video's pixels: which original video (and time) each stretch copies."""
        rec = self._record(video_id)
        if rec.kind == "reupload":
            trim = json.loads(rec.edit)["trim_frames"] / rec.fps
            return [Span(0.0, rec.duration, rec.source_id, trim)]
        if rec.kind == "compilation":
            spans, offset = [], 0.0
            for source_id, first_frame, n_frames in json.loads(rec.cuts):
                length = n_frames / rec.fps
                spans.append(Span(offset, offset + length, source_id, first_frame / rec.fps))
                offset += length
            return spans
        return [Span(0.0, rec.duration, rec.id, 0.0)]

    def duplicate_group(self, video_id: str) -> str:
        """The original a video copies whole (re-uploads); a video's own id otherwise (compilations: see spans)."""
        rec = self._record(video_id)
        return rec.source_id if rec.kind == "reupload" else rec.id

    def source(self, video_id: str) -> str | None:
        return self._record(video_id).source_id

    def transform(self, video_id: str) -> Transform | None:
        """How a re-upload altered its source's pixels (None for other kinds)."""
        rec = self._record(video_id)
        if rec.edit is None:
            return None
        return Transform.from_json(rec.edit)

    def removal(self, video_id: str) -> Removal | None:
        rec = self._record(video_id)
        return None if rec.removal_date is None else Removal(parse_day(rec.removal_date), rec.removal_reason)

    def country(self, video_id: str) -> str | None:
        return self._record(video_id).country

    def window_shows_class(self, video_id: str, start: float, end: float) -> str | None:
        """The class shown in [start, end) seconds when its action covers at least half the window, else None."""
        if end <= start:
            raise ValueError(f"window [{start}, {end}) of {video_id!r} is empty")
        covered = sum(_overlap(start, end, a, b) for a, b in self.action_segments(video_id))
        return self._record(video_id).label if covered >= MIN_ACTION_SHARE * (end - start) else None

    def shared_content(self, a: tuple[str, float, float], b: tuple[str, float, float]) -> float:
        """Seconds of identical original footage in two windows (video_id, start, end): > 0 means duplicates."""
        def originals(video_id: str, start: float, end: float) -> list[tuple[str, float, float]]:
            out = []
            for span in self.spans(video_id):
                lo, hi = max(start, span.start), min(end, span.end)
                if hi > lo:
                    shift = span.original_start - span.start
                    out.append((span.original_id, lo + shift, hi + shift))
            return out

        return sum(_overlap(s0, e0, s1, e1)
                   for id0, s0, e0 in originals(*a) for id1, s1, e1 in originals(*b) if id0 == id1)
