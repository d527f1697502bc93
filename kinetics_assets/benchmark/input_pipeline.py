"""I3D input pipeline over the shards (``shards.py``): pure, seeded sampling functions and Grain loaders.

Training: each example is a random ``frames``-frame window, a random ``crop`` x ``crop`` crop and a horizontal
flip with probability 1/2, all drawn from (seed, epoch, position) alone, so a batch is a pure function of
(seed, step): reruns, any worker count and a resume at any step give the same batches. The record order is a
fresh permutation per epoch (from (seed, epoch)); batches run across epoch ends without dropping examples.
Evaluation: ``eval_clips`` (8) windows per video whose first frames are ``np.linspace(0, frames - T, 8)``
rounded, each with the centre crop. Videos shorter than a window are LOOPED (frame indices wrap around), in
training and evaluation alike: padding would feed the model frozen or black frames it never sees otherwise.

Batches are numpy: ``{"video": uint8 [B, T, S, S, 3], "label": int32 [B]}`` for training and
``{"video": uint8 [B, K, T, S, S, 3], "label": int32 [B], "position": int32 [B], "valid": bool [B]}`` for
evaluation (the last batch is filled up with copies of its last video, marked ``valid`` False, so every batch
has the same shape for a sharded step). Pixel values stay uint8; the model's step scales them to [-1, 1].
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grain
import numpy as np
import pandas as pd
from absl import flags

from kinetics_assets.benchmark.shards import ShardSpec, Shards, decode_jpeg

_ORDER, _VIEW = 0, 1  # stream tags: the epoch's permutation and an example's view never share random numbers


@dataclass(frozen=True)
class InputConfig:
    """Clip shape and shard preprocessing; ``PRODUCTION`` is the note's, ``DEMO`` trains on 2 CPU cores."""

    frames: int = 32
    crop: int = 224
    eval_clips: int = 8
    shards: ShardSpec = field(default_factory=ShardSpec)

    def __post_init__(self):
        if self.frames < 1 or self.eval_clips < 1 or not 1 <= self.crop <= self.shards.short_side:
            raise ValueError(f"invalid input config {self}: need frames, eval_clips >= 1, 1 <= crop <= short_side")


PRODUCTION = InputConfig()
# 16 frames = 2 s. Four evaluation windows of a 10-s clip's 80 frames start 21 frames apart and still cover every
# frame; the note's eight would overlap by 7 frames each and double the evaluation's cost for the same frames.
# 24-px crops of a 30-px short side (the note's 224 of 256 scaled): a clip costs about half the CPU of 32 of 40
# (49 against 90 ms a clip in a train step), which buys the tiny run its epochs (configs.tiny).
DEMO = InputConfig(frames=16, crop=24, eval_clips=4, shards=ShardSpec(fps=8.0, short_side=30))


@dataclass(frozen=True)
class View:
    """Where one training example comes from inside its video."""

    start: int
    top: int
    left: int
    flip: bool


def looped(start: int, length: int, frames: int) -> np.ndarray:
    """Indices of ``length`` frames from ``start`` in a video of ``frames`` frames, wrapping past its end."""
    return (start + np.arange(length)) % frames


def epoch_order(seed: int, epoch: int, count: int) -> np.ndarray:
    """The order in which epoch ``epoch`` visits ``count`` examples."""
    return np.random.default_rng([seed, epoch, _ORDER]).permutation(count)


def train_view(seed: int, epoch: int, position: int, shape: tuple[int, int, int], config: InputConfig) -> View:
    """The window, crop and flip of record ``position`` (``shape``: its frames, height, width) in ``epoch``."""
    frames, height, width = shape
    if height < config.crop or width < config.crop:
        raise ValueError(f"record {position}: frames of {height}x{width} are smaller than the {config.crop} crop")
    rng = np.random.default_rng([seed, epoch, _VIEW, position])
    return View(start=int(rng.integers(max(frames - config.frames, 0) + 1)),
                top=int(rng.integers(height - config.crop + 1)), left=int(rng.integers(width - config.crop + 1)),
                flip=bool(rng.random() < 0.5))


def step_examples(seed: int, step: int, batch_size: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(epoch, slot) of each example of global batch ``step``: example ``step * batch_size + j`` of the
    epoch-after-epoch stream, where slot ``i`` of epoch ``e`` is ``epoch_order(seed, e, count)[i]``."""
    flat = step * batch_size + np.arange(batch_size)
    epochs = flat // count
    orders = {int(e): epoch_order(seed, int(e), count) for e in np.unique(epochs)}
    return epochs, np.array([orders[int(e)][i] for e, i in zip(epochs, flat % count)], dtype=np.int64)


def eval_indices(frames: int, length: int, clips: int) -> np.ndarray:
    """int [clips, length]: ``clips`` windows whose starts are linearly spaced over the video, looped when the
    video is shorter than a window (then every window starts at frame 0)."""
    starts = np.linspace(0, max(frames - length, 0), clips).round().astype(int)
    return np.stack([looped(start, length, frames) for start in starts])


def centre_offsets(height: int, width: int, crop: int) -> tuple[int, int]:
    """(top, left) of the centred ``crop`` x ``crop`` square."""
    if height < crop or width < crop:
        raise ValueError(f"frames of {height}x{width} are smaller than the {crop} crop")
    return (height - crop) // 2, (width - crop) // 2


def nested_subset(rows: pd.DataFrame, per_class: int | None, seed: int) -> pd.DataFrame:
    """The rows (columns ``label``, ``clip``) of at most ``per_class`` clips per class; None keeps all.

    Each class's clips are ranked by sha256(seed, clip id) and the first ``per_class`` kept, so the subsets
    for growing sizes are nested, and a clip's rank does not depend on row order or on the other clips."""
    if per_class is not None and per_class < 1:
        raise ValueError(f"per_class must be >= 1 or None (all), got {per_class}")
    repeated = rows.duplicated(["label", "clip"])
    if repeated.any():
        raise ValueError(f"row {repeated.idxmax()}: clip {rows.loc[repeated.idxmax(), 'clip']!r} repeats in its class")
    if per_class is None:
        return rows
    key = rows["clip"].astype(str).map(lambda clip: hashlib.sha256(f"{seed}:{clip}".encode()).hexdigest())
    ranked = rows.assign(_key=key).sort_values(["label", "_key"])
    kept = ranked.index[ranked.groupby("label").cumcount().to_numpy() < per_class]
    return rows.loc[sorted(kept)]


class _Frames:
    """Random access to a split's frame records; opens the files in whichever process reads (pickles as paths)."""

    def __init__(self, files: list[Path]):
        self.files = [str(path) for path in files]
        self._source = None

    def __getstate__(self):
        return {"files": self.files, "_source": None}

    def fill(self, out: np.ndarray, first: int, indices: np.ndarray, top: int, left: int, flip: bool) -> None:
        """Writes frames ``indices`` of the clip whose frame 0 is record ``first`` into ``out`` [n, c, c, 3],
        cropped at (top, left) and mirrored if ``flip``; each distinct frame is read and decoded once."""
        if self._source is None:
            self._source = grain.sources.ArrayRecordDataSource(self.files)
        distinct, where = np.unique(indices, return_inverse=True)
        crop = out.shape[1]
        box = (left, top, left + crop, top + crop)
        for k, data in enumerate(self._source.__getitems__([int(first + i) for i in distinct])):
            frame = decode_jpeg(data, box, flip)
            for t in np.flatnonzero(where == k):
                out[t] = frame


@dataclass(frozen=True)
class _Table:
    """The chosen clips of a split as arrays (cheap to pickle): position, label, first record, shape."""

    position: np.ndarray
    label: np.ndarray
    first: np.ndarray
    shape: np.ndarray  # [n, 3]: frames, height, width

    @classmethod
    def of(cls, shards: Shards, split: str, positions) -> _Table:
        index = shards.index(split)
        if positions is not None:
            positions = np.asarray(positions, dtype=np.int64)
            unknown = ~np.isin(positions, index["position"].to_numpy())
            if unknown.any():
                raise ValueError(f"shards {shards.root}: split {split!r} has no record {positions[unknown][0]}")
            index = index.set_index("position", drop=False).loc[positions]
        if index.empty:
            raise ValueError(f"shards {shards.root}: no {split} records to load")
        return cls(index["position"].to_numpy(np.int64), index["label"].to_numpy(np.int32),
                   index["first"].to_numpy(np.int64), index[["frames", "height", "width"]].to_numpy(np.int64))


@dataclass
class _TrainBatch:
    """Global batch ``step`` -> this process's share of it."""

    frames: _Frames
    table: _Table
    config: InputConfig
    seed: int
    batch_size: int
    share: slice

    def __call__(self, step: int) -> dict:
        epochs, slots = step_examples(self.seed, step, self.batch_size, len(self.table.position))
        epochs, slots = epochs[self.share], slots[self.share]
        crop = self.config.crop
        video = np.empty((len(slots), self.config.frames, crop, crop, 3), dtype=np.uint8)
        for j, (epoch, slot) in enumerate(zip(epochs, slots)):
            shape = tuple(int(v) for v in self.table.shape[slot])
            view = train_view(self.seed, int(epoch), int(self.table.position[slot]), shape, self.config)
            indices = looped(view.start, self.config.frames, shape[0])
            self.frames.fill(video[j], int(self.table.first[slot]), indices, view.top, view.left, view.flip)
        return {"video": video, "label": self.table.label[slots]}


@dataclass
class _EvalBatch:
    """Batch ``number`` of the chosen clips in order: each video's ``eval_clips`` centre-cropped windows."""

    frames: _Frames
    table: _Table
    config: InputConfig
    batch_size: int

    def __call__(self, number: int) -> dict:
        count, config = len(self.table.position), self.config
        wanted = number * self.batch_size + np.arange(self.batch_size)
        slots = np.minimum(wanted, count - 1)
        video = np.empty((len(slots), config.eval_clips, config.frames, config.crop, config.crop, 3), dtype=np.uint8)
        for j, slot in enumerate(slots):
            frames, height, width = (int(v) for v in self.table.shape[slot])
            indices = eval_indices(frames, config.frames, config.eval_clips).ravel()
            top, left = centre_offsets(height, width, config.crop)
            clips = video[j].reshape(-1, config.crop, config.crop, 3)
            self.frames.fill(clips, int(self.table.first[slot]), indices, top, left, flip=False)
        return {"video": video, "label": self.table.label[slots], "position": self.table.position[slots].astype(
            np.int32), "valid": wanted < count}


def _iterate(dataset: grain.MapDataset, workers: int, threads: int, prefetch: int) -> Iterator[dict]:
    """Batches in order, computed by ``workers`` processes (0: this one) of ``threads`` threads each."""
    options = grain.ReadOptions(num_threads=threads, prefetch_buffer_size=prefetch)
    iterable = dataset.to_iter_dataset(options)
    if workers > 0:
        if not flags.FLAGS.is_parsed():  # Grain's worker processes read absl flags; we never parse a command line
            flags.FLAGS.mark_as_parsed()
        iterable = iterable.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers,
                                                                     per_worker_buffer_size=prefetch))
    return iter(iterable)


def _check_spec(shards: Shards, config: InputConfig) -> None:
    if shards.spec != config.shards:
        raise ValueError(f"shards {shards.root} were built with {shards.spec}, the config wants {config.shards}")


def train_batches(shards: Shards, config: InputConfig, *, batch_size: int, seed: int, steps: int,
                  start_step: int = 0, positions=None, split: str = "train", workers: int = 0, threads: int = 1,
                  prefetch: int = 2, process_index: int = 0, process_count: int = 1) -> Iterator[dict]:
    """Training batches for steps ``start_step`` .. ``steps - 1`` (global ``batch_size``; each of
    ``process_count`` hosts gets its contiguous share) over the records ``positions`` (default: all), e.g. a
    ``nested_subset`` of ``shards.index(split)``."""
    if batch_size % process_count or not 0 <= process_index < process_count:
        raise ValueError(f"batch {batch_size} does not split over {process_count} processes (index {process_index})")
    _check_spec(shards, config)
    local = batch_size // process_count
    make = _TrainBatch(_Frames(shards.files(split)), _Table.of(shards, split, positions), config, seed,
                       batch_size, slice(process_index * local, (process_index + 1) * local))
    return _iterate(grain.MapDataset.range(start_step, steps).map(make), workers, threads, prefetch)


def eval_batches(shards: Shards, config: InputConfig, *, split: str, batch_size: int, positions=None,
                 workers: int = 0, threads: int = 1, prefetch: int = 2) -> Iterator[dict]:
    """Every chosen record of ``split`` once, in order, ``batch_size`` videos a batch (see the module docstring)."""
    _check_spec(shards, config)
    table = _Table.of(shards, split, positions)
    make = _EvalBatch(_Frames(shards.files(split)), table, config, batch_size)
    batches = math.ceil(len(table.position) / batch_size)
    return _iterate(grain.MapDataset.range(batches).map(make), workers, threads, prefetch)
