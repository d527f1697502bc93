"""I3D input pipeline: seeded sampling (windows, crops, flips, epoch order), 8-clip evaluation indices, nested
per-class subsets, and a round trip tiny mp4 release -> ArrayRecord shards -> Grain batches."""

import json
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
from grain.sources import ArrayRecordDataSource

from kinetics_assets.benchmark.input_pipeline import (
    DEMO,
    InputConfig,
    centre_offsets,
    epoch_order,
    eval_batches,
    eval_indices,
    looped,
    nested_subset,
    step_examples,
    train_batches,
    train_view,
)
from kinetics_assets.benchmark.shards import ShardSpec, build_shards, decode_clip, decode_jpeg, open_shards

TINY = InputConfig(frames=4, crop=12, eval_clips=3, shards=ShardSpec(short_side=16))


def write_clip(path: Path, frames: int, fps: int = 25, width: int = 64, height: int = 48) -> None:
    """Frame k is grey 10 * k (mod 250) on average, so a decoded frame tells which source frame it is; its left
    half is 8 brighter than its right, so crops and flips show."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for k in range(frames):
            image = np.full((height, width, 3), (10 * k) % 250, dtype=np.int16)
            image[:, :width // 2] += 4
            image[:, width // 2:] -= 4
            image = np.clip(image, 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def grey_level(frames: np.ndarray) -> np.ndarray:
    return np.rint(frames.reshape(len(frames), -1).mean(axis=1) / 10).astype(int)


# Clips of the fake release: split, class folder, label index, clip id, frames (two are shorter than a window).
CLIPS = [("train", "a", 0, "aaaaaaaaaaa_000000_000010", 30), ("train", "a", 0, "bbbbbbbbbbb_000000_000010", 3),
         ("train", "b", 1, "ccccccccccc_000000_000010", 12), ("train", "b", 1, "ddddddddddd_000000_000010", 20),
         ("train", "b", 1, "eeeeeeeeeee_000000_000010", 9), ("val", "a", 0, "fffffffffff_000000_000010", 25),
         ("val", "b", 1, "ggggggggggg_000000_000010", 2)]


def write_release(root: Path, broken: bool = False) -> Path:
    """The files of a release folder the shard builder reads: manifest, classes and the mmaction2 lists."""
    lists = {}
    for split, folder, label, clip, frames in CLIPS:
        write_clip(root / split / folder / f"{clip}.mp4", frames)
        lists.setdefault(split, []).append(f"{split}/{folder}/{clip}.mp4 {label}\n")
    if broken:
        (root / "train" / "b" / "zzzzzzzzzzz_000000_000010.mp4").write_bytes(b"not a video")
        lists["train"].append("train/b/zzzzzzzzzzz_000000_000010.mp4 1\n")
    for split, lines in lists.items():
        (root / f"{split}_list_videos.txt").write_text("".join(lines))
    (root / "classes.txt").write_text("a\nb\n")
    (root / "manifest.json").write_text(json.dumps({"content_sha256": "broken" if broken else "tiny"}))
    return root


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    base = tmp_path_factory.mktemp("i3d")
    return build_shards(write_release(base / "release"), base / "shards", TINY.shards, clips_per_shard=2)


def test_train_view_is_seeded_by_seed_epoch_position_and_stays_inside_the_video():
    shape = (40, 16, 21)
    views = [train_view(3, epoch, position, shape, TINY) for epoch in range(3) for position in range(50)]
    assert views == [train_view(3, epoch, position, shape, TINY) for epoch in range(3) for position in range(50)]
    assert views != [train_view(4, epoch, position, shape, TINY) for epoch in range(3) for position in range(50)]
    assert all(0 <= v.start <= 36 and 0 <= v.top <= 4 and 0 <= v.left <= 9 for v in views)
    assert {v.flip for v in views} == {True, False}
    assert len({v.start for v in views}) > 10 and len({(v.top, v.left) for v in views}) > 10
    with pytest.raises(ValueError, match="smaller than the 12 crop"):
        train_view(0, 0, 7, (40, 10, 21), TINY)


def test_short_videos_loop_in_training_and_evaluation():
    assert looped(0, 8, 5).tolist() == [0, 1, 2, 3, 4, 0, 1, 2]
    assert train_view(0, 0, 0, (3, 16, 16), TINY).start == 0
    assert eval_indices(3, 4, 3).tolist() == [[0, 1, 2, 0]] * 3


def test_eval_windows_start_at_linearly_spaced_frames_and_end_at_the_last():
    indices = eval_indices(250, 32, 8)
    assert indices.shape == (8, 32)
    assert indices[:, 0].tolist() == np.linspace(0, 218, 8).round().astype(int).tolist()
    assert indices[-1, -1] == 249 and (np.diff(indices, axis=1) == 1).all()
    assert eval_indices(32, 32, 8).tolist() == [list(range(32))] * 8
    assert centre_offsets(16, 21, 12) == (2, 4)


def test_each_epoch_visits_every_example_once_in_a_new_order_across_batches():
    count, batch = 7, 3
    assert sorted(epoch_order(5, 0, count)) == list(range(count))
    assert not np.array_equal(epoch_order(5, 0, 100), epoch_order(5, 1, 100))
    pairs = [step_examples(5, step, batch, count) for step in range(7)]  # 21 examples = 3 epochs
    epochs = np.concatenate([e for e, _ in pairs])
    slots = np.concatenate([s for _, s in pairs])
    for epoch in range(3):
        assert sorted(slots[epochs == epoch]) == list(range(count))
        assert slots[epochs == epoch].tolist() == epoch_order(5, epoch, count).tolist()


def test_subsets_are_nested_deterministic_and_independent_of_row_order():
    rows = pd.DataFrame({"label": np.repeat([0, 1, 2], [30, 12, 5]), "clip": [f"clip{i:03d}" for i in range(47)]})
    sizes = [1, 2, 5, 10, 20, None]
    subsets = [set(nested_subset(rows, size, seed=11)["clip"]) for size in sizes]
    assert all(small <= large for small, large in zip(subsets, subsets[1:]))
    assert nested_subset(rows, 10, seed=11).groupby("label").size().tolist() == [10, 10, 5]
    assert subsets[-1] == set(rows["clip"])
    shuffled = rows.sample(frac=1, random_state=0)
    assert set(nested_subset(shuffled, 5, seed=11)["clip"]) == subsets[2]
    assert set(nested_subset(rows, 5, seed=12)["clip"]) != subsets[2]
    with pytest.raises(ValueError, match="clip 'clip000' repeats"):
        nested_subset(pd.concat([rows, rows.head(1)], ignore_index=True), 5, seed=0)
    with pytest.raises(ValueError, match="per_class"):
        nested_subset(rows, 0, seed=0)


def test_decode_resamples_to_25_fps_and_resizes_the_short_side(tmp_path):
    write_clip(tmp_path / "fast.mp4", 20, fps=50, width=64, height=48)
    frames = decode_clip(tmp_path / "fast.mp4", ShardSpec(short_side=16))
    assert frames.shape == (10, 16, 21, 3) and frames.dtype == np.uint8
    assert grey_level(frames).tolist() == list(range(0, 20, 2))


def test_config_refuses_a_crop_larger_than_the_stored_frames():
    with pytest.raises(ValueError, match="crop <= short_side"):
        InputConfig(crop=64, shards=ShardSpec(short_side=40))
    assert (DEMO.frames, DEMO.crop, DEMO.shards.fps, DEMO.shards.short_side) == (16, 24, 8.0, 30)


def test_shards_hold_every_clip_in_list_order_with_its_frames(shards):
    index = shards.index("train")
    assert index["clip"].tolist() == [clip for split, _, _, clip, _ in CLIPS if split == "train"]
    assert index["frames"].tolist() == [30, 3, 12, 20, 9] and set(index["height"]) == {16}
    assert index["first"].tolist() == [0, 30, 33, 45, 65]
    assert [path.name for path in shards.files("train")] == [f"train-0000{i}-of-00003.array_record" for i in range(3)]
    assert shards.classes == ("a", "b") and shards.manifest["splits"]["val"]["clips"] == 2


def test_training_batches_have_the_right_shapes_labels_and_sampled_frames(shards):
    batches = list(train_batches(shards, TINY, batch_size=4, seed=1, steps=5))
    assert len(batches) == 5
    for batch in batches:
        assert batch["video"].shape == (4, 4, 12, 12, 3) and batch["video"].dtype == np.uint8
        assert batch["label"].dtype == np.int32
    index = shards.index("train")
    epochs, slots = step_examples(1, 2, 4, len(index))
    assert batches[2]["label"].tolist() == index["label"].to_numpy()[slots].tolist()
    for j, (epoch, slot) in enumerate(zip(epochs, slots)):
        row = index.iloc[slot]
        view = train_view(1, int(epoch), int(row.position), (row.frames, row.height, row.width), TINY)
        indices = looped(view.start, 4, row.frames)
        assert grey_level(batches[2]["video"][j]).tolist() == (indices % 25).tolist()
        stored = np.stack([decode_jpeg(_record(shards, row["first"] + i)) for i in indices])
        expected = stored[:, view.top:view.top + 12, view.left:view.left + 12]
        assert np.array_equal(batches[2]["video"][j], expected[:, :, ::-1] if view.flip else expected)


def test_training_batches_are_the_same_resumed_and_with_worker_processes(shards):
    whole = list(train_batches(shards, TINY, batch_size=4, seed=1, steps=4))
    resumed = list(train_batches(shards, TINY, batch_size=4, seed=1, steps=4, start_step=2))
    iterator = train_batches(shards, TINY, batch_size=4, seed=1, steps=4, workers=1)
    in_workers = list(iterator)
    iterator.close()
    for mine, other in zip(whole[2:] + whole, resumed + in_workers):
        assert np.array_equal(mine["video"], other["video"]) and np.array_equal(mine["label"], other["label"])
    hosts = [next(train_batches(shards, TINY, batch_size=4, seed=1, steps=1, process_index=i, process_count=2))
             for i in range(2)]
    assert np.array_equal(np.concatenate([h["video"] for h in hosts]), whole[0]["video"])


def test_subset_positions_restrict_training_to_the_subset(shards):
    chosen = nested_subset(shards.index("train"), 1, seed=0)
    labels = np.concatenate([b["label"] for b in train_batches(shards, TINY, batch_size=2, seed=0, steps=3,
                                                                positions=chosen["position"])])
    assert sorted(labels.tolist()) == [0, 0, 0, 1, 1, 1]
    with pytest.raises(ValueError, match="no record 99"):
        train_batches(shards, TINY, batch_size=2, seed=0, steps=1, positions=[99])


def test_eval_batches_cover_every_video_once_with_centred_linspace_clips(shards):
    batches = list(eval_batches(shards, TINY, split="train", batch_size=2))
    assert [b["video"].shape for b in batches] == [(2, 3, 4, 12, 12, 3)] * 3
    assert np.concatenate([b["valid"] for b in batches]).tolist() == [True] * 5 + [False]
    assert np.concatenate([b["position"] for b in batches]).tolist() == [0, 1, 2, 3, 4, 4]
    assert np.concatenate([b["label"] for b in batches]).tolist() == [0, 0, 1, 1, 1, 1]
    first = batches[0]["video"][0]  # 30 frames: windows start at 0, 13, 26 (grey levels wrap at 25)
    assert [grey_level(clip).tolist() for clip in first] == [[0, 1, 2, 3], [13, 14, 15, 16], [1, 2, 3, 4]]
    record = open_shards(shards.root)
    assert record.spec == TINY.shards
    with pytest.raises(ValueError, match="built with"):
        eval_batches(shards, DEMO, split="val", batch_size=2)


def test_an_undecodable_clip_is_skipped_and_named_and_rebuilds_are_idempotent(tmp_path):
    release = write_release(tmp_path / "release", broken=True)
    built = build_shards(release, tmp_path / "shards", TINY.shards)
    skipped = built.manifest["splits"]["train"]["skipped"]
    assert [s["source"] for s in skipped] == ["train/b/zzzzzzzzzzz_000000_000010.mp4"]
    assert "cannot decode" in skipped[0]["reason"] and built.manifest["splits"]["train"]["clips"] == 5
    third = built.index("train")["first"][2] + 2  # frame 2 of the third clip
    assert grey_level(decode_jpeg(_record(built, third))[None]).tolist() == [2]
    stamp = (tmp_path / "shards" / "shards.json").stat().st_mtime_ns
    assert build_shards(release, tmp_path / "shards", TINY.shards).manifest == built.manifest
    assert (tmp_path / "shards" / "shards.json").stat().st_mtime_ns == stamp
    rebuilt = build_shards(release, tmp_path / "shards", ShardSpec(short_side=20))
    assert set(rebuilt.index("train")["height"]) == {20}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def _record(shards, number: int) -> bytes:
    return ArrayRecordDataSource([str(p) for p in shards.files("train")])[int(number)]
