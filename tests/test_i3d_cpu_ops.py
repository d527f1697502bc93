"""I3D's ops as XLA:CPU runs them fast (cpu_ops.py) are the same ops: the 2-D-computed 3-D convolution's values and
gradients equal XLA's 3-D convolution, and the shifted-slice max pool's equal Flax's max pool, for every window and
stride I3D uses (odd sizes included, where SAME padding is uneven); the whole network gives the same logits and
gradients with the same parameters either way."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn
from jax import lax

from kinetics_assets.benchmark.cpu_ops import conv3d_as_2d, max_pool_by_shifts
from kinetics_assets.benchmark.models import I3D, init_variables

DIMENSIONS = ("NDHWC", "DHWIO", "NDHWC")


def native(x, w, strides, padding="SAME"):
    return lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=DIMENSIONS)


def ours(x, w, strides, padding="SAME"):
    return conv3d_as_2d(x, w, strides, padding,
                                   dimension_numbers=lax.conv_dimension_numbers(x.shape, w.shape, DIMENSIONS))


@pytest.mark.parametrize("shape, kernel, strides", [
    ((2, 16, 24, 24, 3), (7, 7, 7), (2, 2, 2)),   # Conv3d_1a_7x7
    ((2, 9, 11, 13, 3), (7, 7, 7), (2, 2, 2)),    # odd sizes: uneven SAME padding in every axis
    ((2, 5, 6, 6, 4), (3, 3, 3), (1, 1, 1)),      # Conv3d_2c_3x3 and the Inception 3x3x3 branches
    ((2, 3, 4, 4, 5), (1, 1, 1), (1, 1, 1)),      # 1x1x1 units
    ((1, 2, 7, 7, 2), (3, 3, 3), (1, 1, 1)),      # fewer frames than taps
])
def test_values_and_gradients_equal_the_native_3d_convolution(shape, kernel, strides):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=shape).astype(np.float32))
    w = jnp.asarray(rng.normal(size=(*kernel, shape[-1], 6)).astype(np.float32))
    expected, got = native(x, w, strides), ours(x, w, strides)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)
    cotangent = jnp.asarray(rng.normal(size=expected.shape).astype(np.float32))
    for argnum in (0, 1):  # the input's gradient and the kernel's
        grad_native = jax.grad(lambda *a: jnp.sum(native(*a, strides) * cotangent), argnum)(x, w)
        grad_ours = jax.grad(lambda *a: jnp.sum(ours(*a, strides) * cotangent), argnum)(x, w)
        np.testing.assert_allclose(grad_ours, grad_native, rtol=1e-4, atol=1e-3)


def test_other_convolutions_go_to_xla_unchanged():
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(1, 6, 8, 8, 2)).astype(np.float32))
    w = jnp.asarray(rng.normal(size=(3, 3, 3, 2, 4)).astype(np.float32))
    np.testing.assert_array_equal(ours(x, w, (1, 1, 1), "VALID"), native(x, w, (1, 1, 1), "VALID"))


@pytest.mark.parametrize("window, strides", [
    ((1, 3, 3), (1, 2, 2)),  # MaxPool3d_2a_3x3, 3a
    ((3, 3, 3), (2, 2, 2)),  # MaxPool3d_4a_3x3
    ((2, 2, 2), (2, 2, 2)),  # MaxPool3d_5a_2x2
    ((3, 3, 3), (1, 1, 1)),  # the Inception blocks' pool branch
])
def test_max_pool_values_and_gradients_equal_flax(window, strides):
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.normal(size=(2, 5, 7, 9, 3)).astype(np.float32))  # distinct values: no tied maxima
    expected = nn.max_pool(x, window, strides, padding="SAME")
    np.testing.assert_array_equal(max_pool_by_shifts(x, window, strides), expected)
    cotangent = jnp.asarray(rng.normal(size=expected.shape).astype(np.float32))
    grad_flax = jax.grad(lambda v: jnp.sum(nn.max_pool(v, window, strides, padding="SAME") * cotangent))(x)
    grad_ours = jax.grad(lambda v: jnp.sum(max_pool_by_shifts(v, window, strides) * cotangent))(x)
    np.testing.assert_allclose(grad_ours, grad_flax, rtol=1e-6, atol=1e-6)


def test_the_network_gives_the_same_logits_and_gradients_with_either_ops():
    video = np.random.default_rng(2).uniform(-1, 1, (2, 8, 32, 32, 3)).astype(np.float32)
    labels = np.array([1, 3])
    models = [I3D(5, width=0.125, dropout_rate=0.0, cpu_ops=flag) for flag in (False, True)]
    variables = jax.jit(init_variables, static_argnums=(0, 1))(models[0], video.shape, jax.random.key(0))
    shapes = [jax.eval_shape(lambda m=m: m.init(jax.random.key(0), video, train=False)) for m in models]
    assert jax.tree.structure(shapes[0]) == jax.tree.structure(shapes[1])  # the same parameters and checkpoints

    # Inference mode: BatchNorm over a batch of 2 makes training-mode gradients chaotic (a 1e-6 change of the
    # input moves some by more than their own size, with either implementation).
    def loss(params, model):
        logits = model.apply({**variables, "params": params}, video, train=False)
        return -jnp.mean(jax.nn.log_softmax(logits)[np.arange(2), labels]), logits

    native, native_logits = jax.jit(jax.grad(loss, has_aux=True), static_argnums=1)(variables["params"], models[0])
    ours, our_logits = jax.jit(jax.grad(loss, has_aux=True), static_argnums=1)(variables["params"], models[1])
    np.testing.assert_allclose(our_logits, native_logits, rtol=1e-4, atol=1e-4)
    assert not np.allclose(native_logits[0], native_logits[1])  # the comparison is not between constants
    for (path, got), expected in zip(jax.tree_util.tree_leaves_with_path(ours), jax.tree.leaves(native)):
        scale = float(np.max(np.abs(expected)))
        assert scale > 0, jax.tree_util.keystr(path)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4 * scale, err_msg=jax.tree_util.keystr(path))
