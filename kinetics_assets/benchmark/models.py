"""I3D: Inception-V1 inflated to 3D (Carreira & Zisserman 2017), layer for layer as DeepMind's kinetics-i3d.

Written in ``flax.linen`` rather than ``flax.nnx`` because linen keeps parameters and BatchNorm statistics as
separate immutable collections (``params``, ``batch_stats``), which is what a pure ``jax.jit``-ed train step, an
Orbax checkpoint of plain pytrees and Flax's examples/imagenet (the pattern followed here) all want.

Channels last (``[B, T, H, W, C]``), inputs in [-1, 1], SAME padding everywhere except the final average pool
(VALID, as the original). Every endpoint is sown (``endpoints`` collection, ``by_name``) so a summary can list their shapes.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import linen as nn

from kinetics_assets.benchmark.cpu_ops import conv3d_as_2d, max_pool_by_shifts


class MixedWidths(NamedTuple):
    """Output channels of an Inception block's four branches (branch 1 and 2: 1x1x1 reduce, then 3x3x3)."""

    b0: int
    b1_reduce: int
    b1: int
    b2_reduce: int
    b2: int
    b3: int


# (endpoint, kind, spec): the kinetics-i3d layer table. Conv spec: (channels, kernel, stride); pool: (window,
# stride); mixed: MixedWidths. The final average pool, dropout and logits follow ``Mixed_5c``.
LAYERS: tuple[tuple[str, str, Any], ...] = (
    ("Conv3d_1a_7x7", "conv", (64, (7, 7, 7), (2, 2, 2))),
    ("MaxPool3d_2a_3x3", "pool", ((1, 3, 3), (1, 2, 2))),
    ("Conv3d_2b_1x1", "conv", (64, (1, 1, 1), (1, 1, 1))),
    ("Conv3d_2c_3x3", "conv", (192, (3, 3, 3), (1, 1, 1))),
    ("MaxPool3d_3a_3x3", "pool", ((1, 3, 3), (1, 2, 2))),
    ("Mixed_3b", "mixed", MixedWidths(64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", "mixed", MixedWidths(128, 128, 192, 32, 96, 64)),
    ("MaxPool3d_4a_3x3", "pool", ((3, 3, 3), (2, 2, 2))),
    ("Mixed_4b", "mixed", MixedWidths(192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", "mixed", MixedWidths(160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", "mixed", MixedWidths(128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", "mixed", MixedWidths(112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", "mixed", MixedWidths(256, 160, 320, 32, 128, 128)),
    ("MaxPool3d_5a_2x2", "pool", ((2, 2, 2), (2, 2, 2))),
    ("Mixed_5b", "mixed", MixedWidths(256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", "mixed", MixedWidths(384, 192, 384, 48, 128, 128)),
)
FINAL_POOL_WINDOW = (2, 7, 7)
BATCH_NORM_DECAY = 0.999
BATCH_NORM_EPSILON = 1e-3


def scaled(channels: int, width: float) -> int:
    """Channels of a layer under the width multiplier (at least one)."""
    return max(1, int(round(channels * width)))


class Unit3D(nn.Module):
    """Conv3D without bias + BatchNorm (offset, no scale; decay 0.999, eps 1e-3) + ReLU, as kinetics-i3d's Unit3D."""

    channels: int
    kernel: tuple[int, int, int] = (1, 1, 1)
    stride: tuple[int, int, int] = (1, 1, 1)
    dtype: Any = jnp.float32
    batch_norm_decay: float = BATCH_NORM_DECAY
    cpu_ops: bool = False  # the convolution computed as XLA:CPU runs fast (cpu_ops.py)

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        x = nn.Conv(self.channels, self.kernel, self.stride, padding="SAME", use_bias=False, dtype=self.dtype,
                    conv_general_dilated=conv3d_as_2d if self.cpu_ops else None)(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=self.batch_norm_decay, epsilon=BATCH_NORM_EPSILON,
                         use_scale=False, use_bias=True, dtype=self.dtype)(x)
        return nn.relu(x)


class Mixed(nn.Module):
    """An inflated Inception block: 1x1x1 | 1x1x1→3x3x3 | 1x1x1→3x3x3 | 3x3x3 max pool→1x1x1, concatenated."""

    widths: MixedWidths
    dtype: Any = jnp.float32
    batch_norm_decay: float = BATCH_NORM_DECAY
    cpu_ops: bool = False

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        w = self.widths
        unit = functools.partial(Unit3D, dtype=self.dtype, batch_norm_decay=self.batch_norm_decay,
                                 cpu_ops=self.cpu_ops)
        b0 = unit(w.b0, name="Branch_0_Conv3d_0a_1x1")(x, train)
        b1 = unit(w.b1_reduce, name="Branch_1_Conv3d_0a_1x1")(x, train)
        b1 = unit(w.b1, (3, 3, 3), name="Branch_1_Conv3d_0b_3x3")(b1, train)
        b2 = unit(w.b2_reduce, name="Branch_2_Conv3d_0a_1x1")(x, train)
        b2 = unit(w.b2, (3, 3, 3), name="Branch_2_Conv3d_0b_3x3")(b2, train)
        b3 = (max_pool_by_shifts if self.cpu_ops else nn.max_pool)(x, (3, 3, 3), (1, 1, 1), padding="SAME")
        b3 = unit(w.b3, name="Branch_3_Conv3d_0b_1x1")(b3, train)
        return jnp.concatenate([b0, b1, b2, b3], axis=-1)


class I3D(nn.Module):
    """I3D RGB network: ``[B, T, H, W, 3]`` in [-1, 1] → logits ``[B, num_classes]`` (averaged over time).

    ``width`` multiplies every layer's channels (not the classes) so a tiny configuration trains on CPU. The final
    (2, 7, 7) average pool is clipped to the feature map when a small input leaves it smaller than that (the
    full 224-px model is unchanged)."""

    num_classes: int
    width: float = 1.0
    dropout_rate: float = 0.5
    dtype: Any = jnp.float32
    batch_norm_decay: float = BATCH_NORM_DECAY  # the original's; a run of a few hundred steps needs a faster one
    subtract_mean_frame: bool = False  # not in the original: leaves only what moves (see configs.tiny)
    cpu_ops: bool = False  # the same convolutions and pools computed as XLA:CPU runs fast (cpu_ops.py)

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        x = x.astype(self.dtype)
        if self.subtract_mean_frame:
            x = x - jnp.mean(x, axis=1, keepdims=True)
        endpoints = {}
        for endpoint, kind, spec in LAYERS:
            if kind == "conv":
                channels, kernel, stride = spec
                x = Unit3D(scaled(channels, self.width), kernel, stride, dtype=self.dtype,
                           batch_norm_decay=self.batch_norm_decay, cpu_ops=self.cpu_ops, name=endpoint)(x, train)
            elif kind == "pool":
                window, stride = spec
                x = (max_pool_by_shifts if self.cpu_ops else nn.max_pool)(x, window, stride, padding="SAME")
            else:
                widths = MixedWidths(*(scaled(c, self.width) for c in spec))
                x = Mixed(widths, dtype=self.dtype, batch_norm_decay=self.batch_norm_decay,
                          cpu_ops=self.cpu_ops, name=endpoint)(x, train)
            endpoints[endpoint] = x
        window = tuple(min(w, size) for w, size in zip(FINAL_POOL_WINDOW, x.shape[1:4]))
        x = nn.avg_pool(x, window, (1, 1, 1), padding="VALID")
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        x = nn.Conv(self.num_classes, (1, 1, 1), padding="SAME", use_bias=True, dtype=self.dtype, name="Logits")(x)
        x = jnp.mean(x, axis=(1, 2, 3))  # over time (the pooled map is 1x1 in space at 224 px)
        endpoints["Logits"] = x
        self.sow("endpoints", "by_name", endpoints)
        return x.astype(jnp.float32)


def init_variables(model: I3D, video_shape: tuple[int, ...], key: jax.Array) -> dict[str, Any]:
    """``params`` and ``batch_stats`` distributed as ``model.init`` would make them, from one random draw.

    Kernels: LeCun normal truncated at 2σ (Flax's default, variance-preserving), biases and offsets zero, moving
    mean 0 and variance 1. One draw for all ~60 kernels instead of one per kernel: XLA on CPU spends about a second
    compiling each distinct random-normal shape, which made ``model.init`` take a minute for the tiny model."""
    video = jax.ShapeDtypeStruct(video_shape, jnp.float32)
    shapes = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), video)
    leaves, treedef = jax.tree_util.tree_flatten_with_path(shapes["params"])
    kernels = [leaf.size for path, leaf in leaves if path[-1].key == "kernel"]
    draw = jax.random.truncated_normal(key, -2.0, 2.0, (sum(kernels),), jnp.float32)
    truncated_std = 0.87962566103423978  # std of a unit normal truncated to [-2, 2]
    params, offset = [], 0
    for path, leaf in leaves:
        if path[-1].key == "kernel":
            fan_in = math.prod(leaf.shape[:-1])
            params.append(draw[offset:offset + leaf.size].reshape(leaf.shape) / (truncated_std * math.sqrt(fan_in)))
            offset += leaf.size
        else:
            params.append(jnp.zeros(leaf.shape, leaf.dtype))
    batch_stats = jax.tree_util.tree_map_with_path(
        lambda path, leaf: (jnp.ones if path[-1].key == "var" else jnp.zeros)(leaf.shape, leaf.dtype),
        shapes["batch_stats"])
    return {"params": jax.tree_util.tree_unflatten(treedef, params), "batch_stats": batch_stats}


class Summary(NamedTuple):
    """What ``kinetics i3d summary`` prints: trainable parameters and each endpoint's output shape."""

    parameters: int
    endpoints: tuple[tuple[str, tuple[int, ...]], ...]


def summarize(model: I3D, frames: int, resolution: int, batch: int = 1) -> Summary:
    """Count parameters and trace endpoint shapes without computing anything (``jax.eval_shape``)."""
    video = jax.ShapeDtypeStruct((batch, frames, resolution, resolution, 3), jnp.float32)
    variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), video)
    variables = {"params": variables["params"], "batch_stats": variables["batch_stats"]}
    _, state = jax.eval_shape(lambda v, x: model.apply(v, x, train=False, mutable=["endpoints"]), variables, video)
    parameters = sum(int(leaf.size) for leaf in jax.tree.leaves(variables["params"]))
    (by_name,) = state["endpoints"]["by_name"]
    order = [endpoint for endpoint, _, _ in LAYERS] + ["Logits"]  # the pytree sorts names; the table does not
    endpoints = tuple((name, tuple(by_name[name].shape)) for name in order)
    return Summary(parameters, endpoints)
