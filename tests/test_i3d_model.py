"""The I3D network against the kinetics-i3d layer table: exact parameter count, endpoint shapes, widths, the CLI.

The expected count is derived here from the table written out again (not from ``models.LAYERS``), so a wrong
channel, kernel or an extra bias/scale in the Flax module shows as a different number."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

from kinetics_assets.benchmark.models import I3D, init_variables, summarize
from kinetics_assets.cli import app

# Carreira & Zisserman 2017, Fig. 3 / kinetics-i3d i3d.py: stem convs (out channels, cubic kernel) and the Inception
# blocks' (1x1, 3x3 reduce, 3x3, 3x3 reduce, 3x3, pool proj) widths.
STEM = [(64, 7), (64, 1), (192, 3)]
INCEPTION = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32), "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64), "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64), "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128), "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}


def unit(c_in: int, c_out: int, k: int) -> int:
    """Conv without bias + BatchNorm with an offset and no scale (moving statistics are not parameters)."""
    return k ** 3 * c_in * c_out + c_out


def table_parameter_count(classes: int) -> int:
    total, channels = 0, 3
    for c_out, k in STEM:
        total, channels = total + unit(channels, c_out, k), c_out
    for b0, b1r, b1, b2r, b2, b3 in INCEPTION.values():
        total += (unit(channels, b0, 1) + unit(channels, b1r, 1) + unit(b1r, b1, 3) + unit(channels, b2r, 1)
                  + unit(b2r, b2, 3) + unit(channels, b3, 1))
        channels = b0 + b1 + b2 + b3
    return total + channels * classes + classes  # 1x1x1 logits conv with bias


def test_parameter_count_for_700_classes_is_the_layer_tables():
    expected = table_parameter_count(700)
    assert expected == 12_997_484  # "about 13.0M" (the issue)
    assert summarize(I3D(700), frames=32, resolution=224).parameters == expected
    assert summarize(I3D(400), frames=32, resolution=224).parameters == table_parameter_count(400)


def test_endpoint_shapes_of_a_64_frame_224_pixel_clip_match_kinetics_i3d():
    shapes = dict(summarize(I3D(700), frames=64, resolution=224, batch=2).endpoints)
    assert list(shapes)[:4] == ["Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3"]
    assert shapes["Conv3d_1a_7x7"] == (2, 32, 112, 112, 64)
    assert shapes["MaxPool3d_2a_3x3"] == (2, 32, 56, 56, 64)
    assert shapes["Conv3d_2c_3x3"] == (2, 32, 56, 56, 192)
    assert shapes["MaxPool3d_3a_3x3"] == (2, 32, 28, 28, 192)
    assert shapes["Mixed_3c"] == (2, 32, 28, 28, 480)
    assert shapes["MaxPool3d_4a_3x3"] == (2, 16, 14, 14, 480)
    assert shapes["Mixed_4f"] == (2, 16, 14, 14, 832)
    assert shapes["MaxPool3d_5a_2x2"] == (2, 8, 7, 7, 832)
    assert shapes["Mixed_5c"] == (2, 8, 7, 7, 1024)
    assert shapes["Logits"] == (2, 700)
    assert len(shapes) == 17


def test_width_multiplier_scales_every_layer_but_the_classes():
    shapes = dict(summarize(I3D(5, width=0.25), frames=8, resolution=32).endpoints)
    assert shapes["Conv3d_1a_7x7"] == (1, 4, 16, 16, 16)
    assert shapes["Mixed_5c"] == (1, 1, 1, 1, 256)
    assert shapes["Logits"] == (1, 5)


def test_batch_norm_has_offsets_but_no_scale_and_only_the_logits_have_a_bias():
    variables = jax.eval_shape(lambda: I3D(7).init(jax.random.key(0), jnp.zeros((1, 8, 64, 64, 3)), train=False))
    names = {jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_leaves_with_path(variables["params"])}
    assert not any("scale" in name for name in names)
    conv_biases = [n for n in names if n.endswith("['bias']") and "BatchNorm" not in n]
    assert conv_biases == ["['Logits']['bias']"]
    stats = jax.tree_util.tree_leaves_with_path(variables["batch_stats"])
    assert {path[-1].key for path, _ in stats} == {"mean", "var"}


def test_one_draw_initialisation_has_flax_structure_and_lecun_scale():
    model = I3D(3, width=0.125, dropout_rate=0.0)
    video = np.random.default_rng(0).uniform(-1, 1, (2, 8, 32, 32, 3)).astype(np.float32)
    variables = jax.jit(init_variables, static_argnums=(0, 1))(model, video.shape, jax.random.key(0))
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), video, train=False))
    assert jax.tree.structure(variables) == jax.tree.structure(
        {"params": shapes["params"], "batch_stats": shapes["batch_stats"]})
    kernel = np.asarray(variables["params"]["Mixed_4f"]["Branch_1_Conv3d_0b_3x3"]["Conv_0"]["kernel"])
    assert np.std(kernel) * np.sqrt(np.prod(kernel.shape[:-1])) == pytest.approx(1.0, rel=0.05)
    assert np.abs(kernel).max() * np.sqrt(np.prod(kernel.shape[:-1])) <= 2 / 0.8796 + 1e-6  # truncated at 2 sigma
    logits = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, video)
    assert logits.shape == (2, 3) and np.all(np.isfinite(logits))
    assert not np.allclose(logits[0], logits[1])


def test_subtracting_the_mean_frame_makes_a_still_picture_added_to_every_frame_invisible():
    rng = np.random.default_rng(0)
    video = rng.uniform(-0.5, 0.5, (2, 8, 32, 32, 3)).astype(np.float32)
    still = rng.uniform(-0.5, 0.5, (1, 1, 32, 32, 3)).astype(np.float32)  # a look that never moves
    for subtract, invisible in ((True, True), (False, False)):
        model = I3D(3, width=0.125, dropout_rate=0.0, subtract_mean_frame=subtract)
        variables = jax.jit(init_variables, static_argnums=(0, 1))(model, video.shape, jax.random.key(0))
        apply = jax.jit(lambda v, x: model.apply(v, x, train=False))
        same = np.allclose(apply(variables, video), apply(variables, video + still), atol=1e-5)
        assert same == invisible, subtract


def test_cli_summary_prints_the_exact_count_and_endpoints():
    result = CliRunner().invoke(app, ["i3d", "summary", "--classes", "700"])
    assert result.exit_code == 0, result.output
    assert "12,997,484" in result.output and "12997484 exactly" in result.output
    assert "Mixed_5c" in result.output and "1x4x7x7x1024" in result.output and "1x700" in result.output
