"""One benchmark run of the note's Table 4: I3D trained from scratch on a nested subset of a release's training
clips (at most N per class), then scored on its val and test clips (8 clips a video in the note, 4 in the demo; probabilities averaged).

Plain functions over a shard folder, so the same code runs in the Dagster process, in a Pipes subprocess
(`pipes_train.py`) or on a TPU VM. Training resumes from the run's latest checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from kinetics_assets.benchmark import configs, input_pipeline
from kinetics_assets.benchmark.shards import open_shards
from resources.storage import atomic_write_bytes

MODELS = {"tiny": configs.tiny, "full": configs.full}
INPUTS = {"demo": input_pipeline.DEMO, "production": input_pipeline.PRODUCTION}
EVAL_SPLITS = ("val", "test")
RUN_FILE = "run.json"
EVALUATION_COLUMNS = ["split", "videos", "top1", "top5", "top1_low", "top1_high"]


@dataclasses.dataclass(frozen=True)
class BenchmarkRun:
    """What one partition trains: `per_class` training clips per class (None: all) of the shards at `shards`."""

    shards: str
    workdir: str
    per_class: int | None
    model: str = "tiny"
    inputs: str = "demo"
    epochs: int | None = None  # None: the model configuration's
    seed: int = 0
    compilation_cache: str | None = None  # JAX's persistent cache: the partitions' identical steps compile once

    def __post_init__(self):
        if self.model not in MODELS or self.inputs not in INPUTS:
            raise ValueError(f"unknown model {self.model!r} or inputs {self.inputs!r}: "
                             f"models {sorted(MODELS)}, inputs {sorted(INPUTS)}")

    def save(self) -> None:
        """`run.json` in the workdir: what a checkpoint there was trained with (for `load`)."""
        atomic_write_bytes(Path(self.workdir) / RUN_FILE, json.dumps(dataclasses.asdict(self), indent=2).encode())

    @classmethod
    def load(cls, workdir: Path) -> BenchmarkRun:
        path = Path(workdir) / RUN_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no benchmark run here (train an i3d_checkpoint partition first)")
        return cls(**json.loads(path.read_text()))

    def config(self, num_classes: int) -> configs.I3DConfig:
        config = MODELS[self.model](num_classes=num_classes)
        inputs = INPUTS[self.inputs]
        changes = {"frames": inputs.frames, "resolution": inputs.crop, "seed": self.seed}
        if self.epochs:  # the schedule keeps its shape: the decays fall at the same fractions of the run
            scale = self.epochs / config.epochs
            changes |= {"epochs": self.epochs,
                        "decay_epochs": tuple(max(1, round(epoch * scale)) for epoch in config.decay_epochs)}
        return dataclasses.replace(config, **changes)


def use_compilation_cache(run: BenchmarkRun) -> None:
    """Point JAX's persistent compilation cache at the run's folder (before anything compiles)."""
    if run.compilation_cache:
        import jax

        jax.config.update("jax_compilation_cache_dir", run.compilation_cache)


def training_positions(run: BenchmarkRun) -> np.ndarray:
    """Shard positions of the run's training clips: the nested subset of `run.per_class` clips per class."""
    index = open_shards(Path(run.shards)).index("train")
    return input_pipeline.nested_subset(index, run.per_class, run.seed)["position"].to_numpy()


def run_training(run: BenchmarkRun, on_metrics: Callable[[int, dict], None] | None = None) -> dict:
    """Train (or resume) the run; returns its summary: clips, steps, final loss and accuracy on the batch.
    On several hosts (a JAX job initialised before this call) each reads its share of every global batch."""
    import jax

    from kinetics_assets.benchmark.train import train

    use_compilation_cache(run)
    shards = open_shards(Path(run.shards))
    config = run.config(len(shards.classes))
    Path(run.workdir).mkdir(parents=True, exist_ok=True)
    run.save()
    positions = training_positions(run)
    batch = config.global_batch()
    steps_per_epoch = max(1, math.ceil(len(positions) / batch))
    total = config.epochs * steps_per_epoch
    last: dict = {}

    def batches(start: int) -> Iterator[dict]:
        return input_pipeline.train_batches(shards, INPUTS[run.inputs], batch_size=batch, seed=run.seed,
                                            steps=total, start_step=start, positions=positions,
                                            process_index=jax.process_index(), process_count=jax.process_count())

    def record(step: int, metrics: dict) -> None:
        last.update(metrics, step=step)
        if on_metrics:
            on_metrics(step, metrics)

    train(config, batches, Path(run.workdir), steps_per_epoch=steps_per_epoch, on_metrics=record)
    return {"clips": int(len(positions)), "classes": len(shards.classes), "steps": total,
            "steps_per_epoch": steps_per_epoch, "global_batch": batch, **last}


def bootstrap_interval(correct: np.ndarray, seed: int, draws: int = 1000) -> tuple[float, float]:
    """95 % percentile interval of the mean of `correct` over videos resampled with replacement."""
    if len(correct) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = correct[rng.integers(0, len(correct), (draws, len(correct)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _valid_only(batches: Iterator[dict]) -> Iterator[dict]:
    for batch in batches:
        keep = np.asarray(batch["valid"])
        yield {"video": batch["video"][keep], "label": batch["label"][keep]}


def run_evaluation(run: BenchmarkRun) -> pd.DataFrame:
    """The run's last checkpoint on val and test: top-1/top-5 (percent) and a bootstrap interval of top-1."""
    from kinetics_assets.benchmark.train import checkpoint_manager, create_train_state, data_mesh, evaluate, \
        restore_latest

    use_compilation_cache(run)
    shards = open_shards(Path(run.shards))
    config = run.config(len(shards.classes))
    with checkpoint_manager(Path(run.workdir)) as manager:
        if manager.latest_step() is None:
            raise ValueError(f"no checkpoint in {run.workdir}: train the run first")
        state = restore_latest(manager, create_train_state(config, data_mesh()))
    rows = []
    for split in EVAL_SPLITS:
        if split not in shards.manifest["splits"]:
            continue
        batches = input_pipeline.eval_batches(shards, INPUTS[run.inputs], split=split,
                                              batch_size=config.global_batch())
        scored = evaluate(state, _valid_only(batches), pad_to=config.global_batch())
        correct = (scored.probabilities.argmax(axis=1) == scored.labels).astype(float)
        low, high = bootstrap_interval(correct, run.seed)
        rows.append((split, len(correct), 100 * scored.top1, 100 * scored.top5, 100 * low, 100 * high))
    return pd.DataFrame(rows, columns=EVALUATION_COLUMNS)
