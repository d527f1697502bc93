"""``kinetics dedup DIR`` prints the duplicate clusters of a folder as JSON, in a deterministic order."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from kinetics_assets.dedup.cli import dedup
from resources.sandbox.render import (
    Compilation,
    Cut,
    Reupload,
    Scene,
    Transform,
    class_motion,
    encode_mp4,
)


def _scene(seed: int) -> Scene:
    return Scene(look_seed=seed, width=160, height=120, fps=25, n_frames=250,
                 motion=class_motion("juggling balls"), action_end=10.0)


def test_cli_prints_clusters_of_a_folder(tmp_path: Path):
    a, b, c = _scene(7), _scene(8), _scene(9)
    encode_mp4(a, tmp_path / "a_original.mp4")
    encode_mp4(Reupload(a, Transform(width=128, height=96, mirror=True, crf=36)), tmp_path / "z_mirrored.mp4")
    encode_mp4(b, tmp_path / "b_original.mp4")
    encode_mp4(Compilation((Cut(b, 100, 125),), 160, 120, 25), tmp_path / "c_subclip.mp4")
    encode_mp4(c, tmp_path / "d_unrelated_same_motion.mp4")
    (tmp_path / "notes.txt").write_text("not a video")
    app = typer.Typer()
    app.command()(dedup)
    result = CliRunner().invoke(app, [str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [["a_original.mp4", "z_mirrored.mp4"], ["b_original.mp4", "c_subclip.mp4"]]
    assert "notes.txt" in result.stderr
