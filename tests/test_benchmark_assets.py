"""The benchmark's Dagster wiring on a tiny release: shards of the latest release, a checkpoint and an evaluation per
training-set size (in the run's process and through a Pipes subprocess), and Table 4 with Figure 1.

Protects: the latest release is what gets sharded; a partition trains on its scaled, nested subset and reports
its steps; Pipes reports the same materialization from a subprocess; the table has one row per size, in order,
with val and test scores and an interval, beside the note's; the figure is written."""

import json
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from kinetics_assets.benchmark import assets as benchmark
from kinetics_assets.benchmark.assets import BenchmarkSettings
from resources.accelerator import InProcessAccelerator, PipesSubprocessAccelerator
from resources.storage import LocalArtifactStore, LocalParquetIOManager
from test_i3d_input import write_clip

CLASSES = ("a", "b")
CLIPS_PER_SPLIT = {"train": 3, "val": 1, "test": 2}  # per class


def write_release(root: Path) -> None:
    """A release folder as the shard builder reads it, under releases/ with LATEST pointing at it."""
    release = root / "releases" / "tiny-1"
    for split, count in CLIPS_PER_SPLIT.items():
        lines = []
        for label, name in enumerate(CLASSES):
            for number in range(count):
                clip = f"{name * 10}{number}_000000_000010"
                write_clip(release / split / name / f"{clip}.mp4", frames=12 + 3 * number)
                lines.append(f"{split}/{name}/{clip}.mp4 {label}\n")
        (release / f"{split}_list_videos.txt").write_text("".join(lines))
    (release / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    (release / "manifest.json").write_text(json.dumps({"content_sha256": "tiny-release"}))
    (root / "releases" / "LATEST").write_text("tiny-1\n")


@pytest.fixture(scope="module")
def benchmarked(tmp_path_factory):
    root = tmp_path_factory.mktemp("benchmark")
    write_release(root / "artifacts")
    resources = {
        "artifacts": LocalArtifactStore(root=str(root / "artifacts")),
        "io_manager": LocalParquetIOManager(base_dir=str(root / "assets")),
        # 100 examples a class -> 1 clip, 200 -> 2; one epoch each
        "benchmark": BenchmarkSettings(model="tiny", inputs="demo", examples_scale=0.01, epochs=1),
        "accelerator": InProcessAccelerator(),
    }
    assets = dg.load_assets_from_modules([benchmark])
    instance = dg.DagsterInstance.ephemeral()

    def materialize(selection, partition=None, **changes):
        result = dg.materialize(assets, selection=selection, partition_key=partition, instance=instance,
                                resources={**resources, **changes})
        assert result.success
        return result

    shards = materialize(["benchmark_shards"])
    trained = {key: materialize(["i3d_checkpoint", "i3d_evaluation"], key) for key in ("100", "all")}
    piped = materialize(["i3d_checkpoint"], "200", accelerator=PipesSubprocessAccelerator())
    report = materialize(["benchmark_table"])
    return root, shards, trained, piped, report


def _metadata(result, asset):
    return result.asset_materializations_for_node(asset)[0].metadata


def test_the_latest_release_is_sharded(benchmarked):
    _, shards, *_ = benchmarked
    metadata = _metadata(shards, "benchmark_shards")
    assert metadata["release"].value == "tiny-1" and metadata["classes"].value == 2
    assert [metadata[f"{split}_clips"].value for split in CLIPS_PER_SPLIT] == [6, 2, 4]


def test_each_size_trains_on_its_scaled_subset_in_process_and_through_pipes(benchmarked):
    root, _, trained, piped, _ = benchmarked
    for key, clips in (("100", 2), ("all", 6)):
        metadata = _metadata(trained[key], "i3d_checkpoint")
        assert metadata["clips"].value == clips and metadata["steps"].value == 1  # one epoch, one batch of 8
        assert "loss" in metadata
    metadata = _metadata(piped, "i3d_checkpoint")  # reported by the subprocess through Pipes
    assert metadata["clips"].value == 4 and metadata["steps"].value == 1 and "loss" in metadata
    assert Path(metadata["workdir"].value).is_dir()


def test_table4_has_a_row_per_size_in_order_with_val_and_test_beside_the_note(benchmarked):
    root, _, trained, _, report = benchmarked
    table = report.output_for_node("benchmark_table")
    assert list(table["train_examples_per_class"]) == ["100", "all"]  # the sizes evaluated so far, in order
    assert {"val_top1", "val_top5", "test_top1", "test_top5", "test_top1_low", "test_top1_high"} <= set(table)
    assert ((table["test_top1_low"] <= table["test_top1"]) & (table["test_top1"] <= table["test_top1_high"])).all()
    assert (table[["val_top1", "test_top1"]].to_numpy() <= table[["val_top5", "test_top5"]].to_numpy()).all()
    metadata = _metadata(report, "benchmark_table")
    assert "the_notes_table4" in metadata and metadata["figure1"].value.startswith("![Figure 1")
    assert (root / "artifacts" / "benchmark" / "figure1.png").stat().st_size > 1000
    evaluation = trained["all"].output_for_node("i3d_evaluation")
    assert list(evaluation["split"]) == ["val", "test"] and list(evaluation["videos"]) == [2, 4]
    assert pd.read_csv(root / "artifacts" / "benchmark" / "table4.csv").shape[0] == 2


def test_more_epochs_stretch_the_schedule_instead_of_training_on_at_the_last_rate():
    from kinetics_assets.benchmark.run import BenchmarkRun

    default = BenchmarkRun(shards="s", workdir="w", per_class=None).config(12)
    longer = BenchmarkRun(shards="s", workdir="w", per_class=None, epochs=4 * default.epochs).config(12)
    assert longer.epochs == 4 * default.epochs
    assert longer.decay_epochs == tuple(4 * epoch for epoch in default.decay_epochs)  # same fractions of the run


# --- the checkpoint upstream: the model localization strategy and the final filter's score ----------------------


def test_the_model_window_is_the_ten_seconds_whose_inside_windows_score_highest():
    from kinetics_assets.benchmark.scoring import best_model_window

    scores = np.full(40, 0.1)
    scores[20:29] = 0.9  # 2-s model windows starting at seconds 20..28 lie inside the 10-s window at 20
    assert best_model_window(scores, duration=40.0, window_seconds=2.0) == 20
    assert best_model_window(np.zeros(12), duration=12.0, window_seconds=2.0) == 0  # ties: the earliest
    scores = np.zeros(30)
    scores[29] = 1.0  # a window starting in the last second fits in no 10-s window: it cannot pull the choice
    assert best_model_window(scores, duration=30.0, window_seconds=2.0) == 0


def test_a_low_model_score_drops_a_clip_with_its_reason_and_only_clips_still_kept():
    from kinetics_assets.release.assets import drop_low_model_scores

    new = pd.DataFrame({"reason": ["", "", "duplicate of x"]}, index=[3, 5, 7])
    scores = pd.Series([0.5, 0.01], index=[3, 5])
    out = drop_low_model_scores(new, scores, min_score=0.05)
    assert out.loc[3, "reason"] == "" and out.loc[7, "reason"] == "duplicate of x"
    assert out.loc[5, "reason"] == "the I3D checkpoint gives its class p=0.010 (< 0.05)"
    assert out["model_score"].isna().tolist() == [False, False, True]


def test_the_checkpoint_scores_a_video_and_localizes_its_clip(benchmarked, tmp_path):
    import av

    from kinetics_assets.acquisition.localize import SourceVideo, Window, make_strategy
    from kinetics_assets.benchmark.scoring import best_model_window
    from kinetics_assets.benchmark.shards import decode_clip

    root, *_ = benchmarked
    (checkpoint,) = (root / "artifacts" / "benchmark" / "checkpoints").glob("*/all")
    video = tmp_path / "long.mp4"
    write_clip(video, frames=25 * 24)  # 24 s
    strategy = make_strategy("model", checkpoint=str(checkpoint), label="b")
    frames = decode_clip(video, strategy.scorer.spec)
    scores = strategy.scorer.second_scores(frames, "b")
    assert len(scores) == 24 and np.all((scores > 0) & (scores < 1))
    start = best_model_window(scores, 24.0, strategy.scorer.inputs.frames / strategy.scorer.spec.fps)
    window = strategy.localize(SourceVideo("abcdefghijk", 24.0, lambda: av.open(str(video))))
    assert window == Window(start, start + 10)
    assert strategy.scorer.clip_score(video, "b") == pytest.approx(float(scores.mean()))
    with pytest.raises(ValueError, match="class 'zebra' is not among the checkpoint's 2 classes"):
        make_strategy("model", checkpoint=str(checkpoint), label="zebra")
