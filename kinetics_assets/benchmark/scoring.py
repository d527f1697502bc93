"""A trained I3D checkpoint put to work upstream: the `model` localization strategy (the 10-s window the model
scores highest for the class) and a per-clip class probability for the final filter.

Both decode a video exactly as the shards store it (the checkpoint's shard spec: frame rate and short side) and
score centre-cropped windows of the model's length; a window's score is the mean probability of the class over
the windows that fit inside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from kinetics_assets.acquisition.localize import (CLIP_SECONDS, SourceVideo, Window, checked_duration,
                                                  register_strategy, whole_video_window)
from kinetics_assets.benchmark import input_pipeline
from kinetics_assets.benchmark.run import BenchmarkRun
from kinetics_assets.benchmark.shards import decode_clip, decode_video, open_shards

SCORE_BATCH = 16  # windows per forward pass


@dataclass(frozen=True)
class ClipScorer:
    """The checkpoint of one benchmark run (its shards say the classes and how frames were stored)."""

    run: BenchmarkRun

    @cached_property
    def _shards(self):
        return open_shards(Path(self.run.shards))

    @cached_property
    def classes(self) -> tuple[str, ...]:
        return self._shards.classes

    @cached_property
    def spec(self):
        """How the checkpoint's training frames were stored (frame rate, short side): videos are decoded alike."""
        return self._shards.spec

    @cached_property
    def inputs(self) -> input_pipeline.InputConfig:
        from kinetics_assets.benchmark.run import INPUTS

        return INPUTS[self.run.inputs]

    @cached_property
    def _model(self):
        import jax

        from kinetics_assets.benchmark.train import data_mesh, jit_eval_step, load_trained_state

        state = load_trained_state(self.run.config(len(self.classes)), self.run.workdir)
        step = jit_eval_step(data_mesh())
        return lambda clips: np.asarray(jax.device_get(step(state, clips[:, None])))

    def class_index(self, label: str) -> int:
        if label not in self.classes:
            raise ValueError(f"class {label!r} is not among the checkpoint's {len(self.classes)} classes")
        return self.classes.index(label)

    def window_probabilities(self, frames: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """[len(starts), classes]: the model's probabilities for the centre-cropped window of `inputs.frames`
        frames at each start (looped past the end, as evaluation does)."""
        crop, length = self.inputs.crop, self.inputs.frames
        top, left = input_pipeline.centre_offsets(frames.shape[1], frames.shape[2], crop)
        windows = np.stack([frames[input_pipeline.looped(int(s), length, len(frames)), top:top + crop,
                                   left:left + crop] for s in starts])
        out = []
        for i in range(0, len(windows), SCORE_BATCH):
            batch = windows[i:i + SCORE_BATCH]
            padded = np.concatenate([batch, np.repeat(batch[:1], SCORE_BATCH - len(batch), axis=0)])
            out.append(self._model(padded)[:len(batch)])
        return np.concatenate(out)

    def second_scores(self, frames: np.ndarray, label: str) -> np.ndarray:
        """Probability of `label` for the window starting at each whole second of the video."""
        fps = self.spec.fps
        starts = (np.arange(max(1, math.ceil(len(frames) / fps))) * fps).round().astype(int)
        return self.window_probabilities(frames, starts)[:, self.class_index(label)]

    def clip_score(self, path: Path, label: str) -> float:
        """Mean probability of `label` over a stored clip's windows, one a second (the final filter's score)."""
        return float(self.second_scores(decode_clip(path, self.spec), label).mean())


def best_model_window(scores: np.ndarray, duration: float, window_seconds: float) -> int:
    """The whole-second start of the 10-s window whose inside model windows (one a second, `window_seconds`
    long) score highest on average; the earliest among ties."""
    last_start = math.floor(duration) - CLIP_SECONDS
    inside = max(1, CLIP_SECONDS - math.ceil(window_seconds) + 1)
    means = [scores[start:start + inside].mean() for start in range(last_start + 1)]
    return int(np.argmax(means))


@dataclass(frozen=True)
class ModelStrategy:
    """The window `scorer`'s checkpoint scores highest for `label`, from the platform's cheapest rendition."""

    scorer: ClipScorer
    label: str
    name: str = "model"

    def __post_init__(self) -> None:
        self.scorer.class_index(self.label)  # an unknown class fails before any download

    def localize(self, source: SourceVideo) -> Window:
        if source.duration is not None and source.duration < CLIP_SECONDS:
            return whole_video_window(source.duration)
        spec = self.scorer.spec
        with source.open_preview() as container:
            frames = decode_video(container, spec, source.youtube_id)
        duration = checked_duration(source, len(frames) / spec.fps)
        if duration < CLIP_SECONDS:
            return whole_video_window(duration)
        scores = self.scorer.second_scores(frames, self.label)
        start = best_model_window(scores, duration, self.scorer.inputs.frames / spec.fps)
        return Window(start, start + CLIP_SECONDS)


def model_strategy(checkpoint: str, label: str) -> ModelStrategy:
    """`make_strategy("model", checkpoint=..., label=...)`: `checkpoint` is an `i3d_checkpoint` partition's
    folder (its `run.json` says how it was trained)."""
    return ModelStrategy(ClipScorer(BenchmarkRun.load(Path(checkpoint))), label)


register_strategy("model", model_strategy)
