"""Hyper-parameters of the note's I3D benchmark (``full``) and a configuration that trains on 2 CPU cores (``tiny``).

Optimizer: SGD with momentum 0.9 and weight decay 1e-5, added to the gradient before momentum (L2
regularisation, as the TF original's kernel regularisers). Only convolution kernels are decayed (``decay_mask``):
BatchNorm offsets and the logits bias are not — they set no model capacity and decaying them only shifts
activations. Learning rate 0.5, divided by 10 after epochs 90, 105, 115 and 120 of 135 (``learning_rate``).
"""

from __future__ import annotations

import dataclasses

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
    eval_clips: int = 8
    checkpoint_every_steps: int = 1000
    log_every_steps: int = 100
    seed: int = 0
    compute_dtype: str = "float32"  # "bfloat16" on GPUs/TPUs; parameters and BatchNorm statistics stay float32

    def global_batch(self, devices: int | None = None) -> int:
        return self.per_device_batch * (jax.device_count() if devices is None else devices)


def full(num_classes: int = 700) -> I3DConfig:
    """The note's run: 32×224×224 RGB clips, global batch 8 per device, 135 epochs."""
    return I3DConfig(num_classes=num_classes)


def tiny(num_classes: int = 4) -> I3DConfig:
    """The demo's run on CPU: quarter width, 8 frames of 32 px, 8 clips per device, 9 epochs with the same shape of
    schedule (÷10 after epochs 6, 7 and 8 of 9: 90, 105 and 120 of 135 over 15; 115 rounds onto 120's)."""
    return I3DConfig(num_classes=num_classes, width=0.25, frames=8, resolution=32, per_device_batch=8, epochs=9,
                     base_learning_rate=0.1, decay_epochs=(6, 7, 8), checkpoint_every_steps=50,
                     log_every_steps=1)


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


def optimizer(config: I3DConfig, steps_per_epoch: int) -> optax.GradientTransformation:
    return optax.chain(
        optax.add_decayed_weights(config.weight_decay, mask=decay_mask),
        optax.sgd(learning_rate(config, steps_per_epoch), momentum=config.momentum),
    )
