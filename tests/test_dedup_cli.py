"""``kinetics dedup DIRECTORY`` prints the duplicate clusters of a folder as JSON, in a deterministic order, and names
every entry it leaves out: an empty DIRECTORY is refused, broken or looping links, FIFOs, folders and truncated videos
are skipped with their reason."""

from __future__ import annotations

import json
import os
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


def _invoke(*args: str):
    app = typer.Typer()
    app.command()(dedup)
    return CliRunner().invoke(app, list(args))


def test_an_empty_folder_name_is_refused_not_read_as_the_current_folder(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    encode_mp4(_scene(7), tmp_path / "a.mp4")
    for empty in ("", "  "):
        result = _invoke(empty)
        assert result.exit_code == 2 and result.stdout == ""
        assert "DIRECTORY" in result.stderr and "is empty" in result.stderr
    assert _invoke(".").exit_code == 0


def test_broken_links_loops_and_non_files_are_named_on_stderr(tmp_path: Path):
    encode_mp4(_scene(7), tmp_path / "a_original.mp4")
    (tmp_path / "b_link.mp4").symlink_to(tmp_path / "a_original.mp4")
    (tmp_path / "dangling.mp4").symlink_to(tmp_path / "gone.mp4")
    (tmp_path / "loop_a.mp4").symlink_to(tmp_path / "loop_b.mp4")
    (tmp_path / "loop_b.mp4").symlink_to(tmp_path / "loop_a.mp4")
    os.mkfifo(tmp_path / "pipe.mp4")  # opening it would block forever
    (tmp_path / "sub").mkdir()
    result = _invoke(str(tmp_path))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [["a_original.mp4", "b_link.mp4"]]  # a working link is a file
    skipped = {line.split(": ", 2)[1]: line.split(": ", 2)[2] for line in result.stderr.splitlines()}
    assert {Path(p).name: reason.split(" (")[0] for p, reason in skipped.items()} == {
        "dangling.mp4": "dangling symlink", "loop_a.mp4": "symlink loop", "loop_b.mp4": "symlink loop",
        "pipe.mp4": "not a regular file", "sub": "a folder"}


def test_a_truncated_faststart_mp4_is_skipped_as_truncated(tmp_path: Path):
    encode_mp4(_scene(7), tmp_path / "whole.mp4")
    data = (tmp_path / "whole.mp4").read_bytes()
    assert data.find(b"moov") < data.find(b"mdat"), "faststart: the index comes first and survives the cut"
    (tmp_path / "half.mp4").write_bytes(data[: len(data) // 2])
    result = _invoke(str(tmp_path))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []
    [line] = result.stderr.splitlines()
    assert line.startswith(f"skipped: {tmp_path / 'half.mp4'}: truncated: decoded ")
    assert line.endswith("of the 10.00 s its container declares")
