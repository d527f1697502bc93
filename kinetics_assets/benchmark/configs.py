"""Hyper-parameters of the note's I3D benchmark (``full``) and a configuration that trains on 2 CPU cores (``tiny``).

Optimizer (``full``): SGD with momentum 0.9 and weight decay 1e-5, added to the gradient before momentum (L2
regularisation, as the TF original's kernel regularisers). Only convolution kernels are decayed (``decay_mask``):
BatchNorm offsets and the logits bias are not — they set no model capacity and decaying them only shifts
activations. Learning rate 0.5, divided by 10 after epochs 90, 105, 115 and 120 of 135 (``learning_rate``).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import optax


@dataclasses.dataclass(frozen=True)
class I3DConfig:
    """One training run's settings. ``per_device_batch`` × devices = the global batch (the note: 8 × 32 = 256)."""

    num_classes: int = 700
    width: float = 1.0
    frames: int = 32
    resolution: int = 224
    dropout_rate: float = 0.5
    per_device_batch: int = 8
    epochs: int = 135
    base_learning_rate: float = 0.5
    decay_epochs: tuple[int, ...] = (90, 105, 115, 120)
    decay_factor: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-5
    optimizer: str = "sgd"  # or "adam" (the tiny run's: see tiny())
    batch_norm_decay: float = 0.999
    subtract_mean_frame: bool = False
    checkpoint_every_steps: int = 1000
    log_every_steps: int = 100
    seed: int = 0
    compute_dtype: str = "float32"  # "bfloat16" on GPUs/TPUs; parameters and BatchNorm statistics stay float32
    cpu_ops: bool | None = None  # the same convolutions and pools as XLA:CPU runs fast (cpu_ops.py); None: on CPU

    def global_batch(self, devices: int | None = None) -> int:
        return self.per_device_batch * (jax.device_count() if devices is None else devices)


def full(num_classes: int = 700) -> I3DConfig:
    """The note's run: 32×224×224 RGB clips, global batch 8 per device, 135 epochs."""
    return I3DConfig(num_classes=num_classes)


def tiny(num_classes: int = 4) -> I3DConfig:
    """The demo's run on CPU: quarter width, 16 frames of 24 px (2 s at the demo shards' 8 fps; ``DEMO``'s crop of
    a 30-px short side), 8 clips per device, 20 epochs, ÷10 after epochs 14 and 17 (the full run's first decay at two
    thirds, then the rest of its decays compressed into one: 115 and 120 of 135 round onto the same epoch).

    Epochs are what the net's fit is limited by (measured on the demo's release: 12 classes, 144 training clips;
    chance 8 %; train top-1 on all 144, val on 23 clips; partitions of 2, 5, 7, 9, 11, 14 clips a class and all):
    - 10 epochs (the configuration before cpu_ops.py made a step 6x cheaper): train 17-39 %, val 9, 22, 35, 26, 22,
      39, 17 % — no rise past 5 clips a class;
    - 20 epochs: train 23, 28, 53, 45, 66, 53, 48 %, val 17, 35, 43, 39, 61, 30, 30 % (mean 36.6), 222 train CPU s (machine loaded);
    - 25 epochs: train 31, 30, 53, 49, 67, 60, 45 %, val 17, 35, 35, 39, 43, 39, 30 % (mean 34.2), 248 CPU s (loaded);
    - 30 epochs fit 'all' better (58-67 % train, 35-52 % val) but cost ~1.5x the 20 epochs, over the demo's budget.
    20 epochs: the best val at the lowest cost. Batch 16 costs twice batch 8 a step (no saving a clip).

    Three departures from the note's recipe, each because a few hundred CPU steps on ~12 clips a class are not 240k
    TPU steps on 545k clips (measured on the demo's release, 300 steps of 8 clips):
    - Adam at 3e-3 instead of SGD: SGD with momentum at 0.03 or 0.1 had reached 25 % / 16 % on the training clips
      and 17 % / 12 % on test; Adam 42 % and 35 %. Adam at 1e-3 or 1e-2 (8 frames, 16 epochs, 7 clips a class) gave
      22 % and 17 % val against 26 % at 3e-3.
    - each clip's mean frame subtracted in the model: without it the net fits each video's look (Adam: 77 % train,
      17 % test) — the sandbox, like the real platform, gives every video its own look, and 12 videos a class
      cannot teach a from-scratch net to ignore it.
    - BatchNorm statistics decay 0.9, not 0.999: at 0.999 a few hundred steps leave them near their initial values,
      so evaluation would normalise with the wrong statistics.
    No dropout: the run is too short to overfit."""
    return I3DConfig(num_classes=num_classes, width=0.25, frames=16, resolution=24, per_device_batch=8, epochs=20,
                     base_learning_rate=3e-3, decay_epochs=(14, 17), optimizer="adam", batch_norm_decay=0.9,
                     subtract_mean_frame=True, dropout_rate=0.0, checkpoint_every_steps=50, log_every_steps=20)


def learning_rate(config: I3DConfig, steps_per_epoch: int) -> optax.Schedule:
    """Piecewise constant over optimizer steps: step ``e * steps_per_epoch`` (the first of epoch e+1) is the first
    at the lower rate for each decay epoch e."""
    boundaries: dict[int, float] = {}
    for epoch in config.decay_epochs:
        boundaries[epoch * steps_per_epoch] = boundaries.get(epoch * steps_per_epoch, 1.0) * config.decay_factor
    return optax.piecewise_constant_schedule(config.base_learning_rate, boundaries)


def decay_mask(params):
    """True for convolution kernels (decayed), False for BatchNorm offsets and the logits bias."""
    return jax.tree_util.tree_map_with_path(lambda path, _: path[-1].key == "kernel", params)


OPTIMIZERS = ("sgd", "adam")


@functools.cache  # one object per configuration, so jitted steps over states built from it trace once
def optimizer(config: I3DConfig) -> optax.GradientTransformation:
    """Weight decay on the kernels, then SGD with momentum (or Adam: ``tiny``). The learning rate is a
    hyper-parameter in the optimizer state (``optax.inject_hyperparams``) that each step sets from the schedule
    (``with_learning_rate``): a schedule inside the step would bake its boundaries into the compiled program, so
    every training-set size (another number of steps per epoch) would compile its own."""
    if config.optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {config.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    if config.optimizer == "sgd":
        step = optax.inject_hyperparams(optax.sgd)(learning_rate=config.base_learning_rate, momentum=config.momentum)
    else:
        step = optax.inject_hyperparams(optax.adam)(learning_rate=config.base_learning_rate)
    return optax.chain(optax.add_decayed_weights(config.weight_decay, mask=decay_mask), step)


def with_learning_rate(opt_state, rate):
    """``optimizer``'s state with the learning rate for the next update set to ``rate`` (traceable)."""
    decay, step = opt_state
    return decay, step._replace(hyperparams={**step.hyperparams, "learning_rate": rate})
