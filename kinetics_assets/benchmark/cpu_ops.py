"""I3D's 3-D convolutions and max pools computed the ways XLA:CPU runs fast; GPUs and TPUs keep the native ops.

XLA:CPU has no fast 3-D convolution and a slow max-pool gradient (``select_and_scatter``). For the tiny model's
train step (8 clips of 16x24x24) took 422-454 CPU ms, of which the first 7x7x7 convolution took 265 and the pools
~60 (measured, RESULTS.md "I3D stage of the demo"). Computed as below the step takes 52-74 ms:

- ``conv3d_as_2d``: a channels-last 3-D convolution as ONE 2-D convolution over (H, W) whose input channels are
  the kernel's temporal taps stacked (the frames t·s … t·s + k - 1 of each output time t).
- ``max_pool_by_shifts``: a max pool as the maximum of shifted strided slices, one axis at a time (max is
  separable), whose gradient is elementwise.

Both compute the same function with the same parameters (only float summation order differs), so checkpoints and
parameter counts do not depend on which ran. Gradients agree too, except where a pool window holds tied maxima:
``select_and_scatter`` gives the first the whole gradient, ``jnp.maximum`` splits it; I3D pools ReLU outputs, whose
ties are zeros, where the ReLU below passes no gradient either way.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

_CHANNELS_LAST_3D = lax.ConvDimensionNumbers(lhs_spec=(0, 4, 1, 2, 3), rhs_spec=(4, 3, 0, 1, 2),
                                             out_spec=(0, 4, 1, 2, 3))


def preferred() -> bool:
    """Whether models built now should use these ops: on CPU only."""
    return jax.default_backend() == "cpu"


def _same_padding(size: int, window: int, stride: int) -> tuple[int, int, int]:
    """Output size and (low, high) padding of XLA's SAME padding along one axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + window - size, 0)
    return out, total // 2, total - total // 2


def _strided_windows(x: jax.Array, axis: int, window: int, stride: int, fill: float) -> list[jax.Array]:
    """The ``window`` SAME-padded strided slices along ``axis`` whose element i holds window i's j-th value."""
    out, low, high = _same_padding(x.shape[axis], window, stride)
    padding = [(0, 0)] * x.ndim
    padding[axis] = (low, high)
    padded = jnp.pad(x, padding, constant_values=fill)
    last = stride * (out - 1) + 1
    return [lax.slice_in_dim(padded, j, j + last, stride, axis=axis) for j in range(window)]


def conv3d_as_2d(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None, dimension_numbers=None,
                 feature_group_count=1, precision=None, **kwargs):
    """``lax.conv_general_dilated`` for Flax's ``nn.Conv``: a channels-last 3-D convolution with SAME padding as a
    2-D convolution over frames-as-channels; any other convolution goes to ``lax.conv_general_dilated`` unchanged."""
    plain = (lhs.ndim == 5 and padding == "SAME" and feature_group_count == 1 and not kwargs
             and all(d == 1 for d in (lhs_dilation or (1,))) and all(d == 1 for d in (rhs_dilation or (1,)))
             and lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers) == _CHANNELS_LAST_3D)
    if not plain:
        return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                                        dimension_numbers, feature_group_count, precision=precision, **kwargs)
    batch, _, height, width, channels = lhs.shape
    taps, kh, kw, _, features = rhs.shape
    if taps == 1 and window_strides[0] == 1:
        stacked = lhs[:, :, :, :, None]
    else:
        stacked = jnp.stack(_strided_windows(lhs, 1, taps, window_strides[0], 0.0), axis=4)  # [B, T', H, W, k, C]
    frames = stacked.shape[1]
    images = stacked.reshape(batch * frames, height, width, taps * channels)
    kernel = jnp.moveaxis(rhs, 0, 2).reshape(kh, kw, taps * channels, features)  # input channels ordered (tap, c)
    out = lax.conv_general_dilated(images, kernel, tuple(window_strides[1:]), "SAME",
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=precision)
    return out.reshape(batch, frames, *out.shape[1:])


def max_pool_by_shifts(x: jax.Array, window: tuple[int, ...], strides: tuple[int, ...],
                       padding: str = "SAME") -> jax.Array:
    """``flax.linen.max_pool(x, window, strides, padding="SAME")`` over the axes between batch and channels."""
    if padding != "SAME":
        raise ValueError(f"max_pool_by_shifts pads SAME only, not {padding!r}")
    for axis, (size, stride) in enumerate(zip(window, strides), start=1):
        if size > 1 or stride > 1:
            shifted = _strided_windows(x, axis, size, stride, -jnp.inf)
            x = shifted[0]
            for other in shifted[1:]:
                x = jnp.maximum(x, other)
    return x
