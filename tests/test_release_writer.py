"""The release folder: official CSVs that round-trip through the importer, private test labels, the clip tree
torchvision/mmaction2 read, release notes against the parent, a manifest whose hashes match, an all-or-nothing
write, and releases that are versioned and never rewritten."""

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from kinetics_assets.editions.annotations import import_annotations
from kinetics_assets.release.writer import (
    LATEST,
    Parent,
    class_folder,
    published_end,
    publish_release,
    read_changes,
    read_release,
    with_stored_clips,
)

EDITION = "Kinetics-700-2020"
STEM = f"{EDITION}-replenished"
CLASSES = ("abseiling", "backflip (human)", "massaging person's head")
SPLITS = ["train", "train", "train", "val", "test"]


def clip_store(tmp_path: Path) -> Path:
    store = tmp_path / "clip_store"
    store.mkdir(exist_ok=True)
    return store


def edition_rows(store: Path) -> pd.DataFrame:
    """Five clips per class, each with a media file in the store, plus one unlabelled public-test row."""
    rows = []
    for c, label in enumerate(CLASSES):
        for k, split in enumerate(SPLITS):
            video = f"{'abc'[c]}{k:010d}"
            media = store / f"{video}.mp4"
            media.write_bytes(f"clip {video} of {label}".encode())
            rows.append({"label": label, "youtube_id": video, "time_start": 10.0 * k, "time_end": 10.0 * k + 10,
                         "split": split, "clip_path": str(media)})
    rows.append({"label": None, "youtube_id": "zzzzzzzzzzz", "time_start": 0.0, "time_end": 10.0, "split": "test",
                 "clip_path": None})
    return pd.DataFrame(rows)


LOST = ["r0000000000", "r0000000001", "r0000000002"]


def source_edition(rows: pd.DataFrame) -> Parent:
    """The edition the release replenishes: every row but the test clips (videos ending in 4), plus three
    abseiling clips whose videos are gone and one backflip clip dropped for another reason."""
    added = rows[rows["youtube_id"].str.endswith("4") & rows["label"].notna()]
    lost = pd.DataFrame({"label": "abseiling", "youtube_id": LOST, "time_start": 0, "time_end": 10, "split": "train"})
    dropped = pd.DataFrame([{"label": "backflip (human)", "youtube_id": "d0000000000", "time_start": 0,
                             "time_end": 10, "split": "val"}])
    return Parent(EDITION, pd.concat([rows.drop(added.index).drop(columns="clip_path"), lost, dropped],
                                     ignore_index=True))


def write(rows: pd.DataFrame, releases: Path, gone=frozenset(LOST)):
    return publish_release(rows, releases, stem=STEM, classes=CLASSES, source=source_edition(rows),
                           gone_among=set(gone).intersection)


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def release(tmp_path):
    rows = edition_rows(clip_store(tmp_path))
    return rows, write(rows, tmp_path / "releases")


def test_official_files_round_trip_through_the_importer(release):
    rows, out = release
    root = out.root
    imported = import_annotations([root / "train.csv", root / "validate.csv", root / "test.csv"], EDITION)
    assert imported.rejected.empty and imported.duplicates_collapsed == 0
    assert len(imported.rows) == len(rows)
    key = ["youtube_id", "time_start", "time_end", "split"]
    assert imported.rows.sort_values(key)[key].values.tolist() == rows.sort_values(key)[key].values.tolist()
    labelled = imported.rows.dropna(subset=["label"])
    assert set(labelled["split"]) == {"train", "val"}  # the public test file carries no labels

    private = import_annotations([root / "private" / "test_labelled.csv"], EDITION)
    assert private.rejected.empty
    expected = rows[(rows["split"] == "test") & rows["label"].notna()]
    assert sorted(zip(private.rows["label"], private.rows["youtube_id"])) == sorted(
        zip(expected["label"], expected["youtube_id"])
    )


def test_official_format_details(release):
    root = release[1].root
    train = (root / "train.csv").read_text().splitlines()
    assert train[0] == "label,youtube_id,time_start,time_end,split" and train[1] == "abseiling,a0000000000,0,10,train"
    assert (root / "validate.csv").read_text().splitlines()[1].endswith(",validate")
    test = pd.read_csv(root / "test.csv")
    assert list(test.columns) == ["youtube_id", "time_start", "time_end", "split"]
    assert list(test["youtube_id"]) == sorted(test["youtube_id"])  # order by video, never by label


def test_clip_tree_is_what_torchvision_and_mmaction2_read(release):
    rows, out = release
    root = out.root
    classes = (root / "classes.txt").read_text().splitlines()
    folders = [class_folder(label) for label in classes]
    assert folders == sorted(folders) == ["abseiling", "backflip_human", "massaging_persons_head"]
    for split in ("train", "val", "test"):
        # torchvision: classes are the sorted folders of {root}/{split}; every class has one in every split
        assert sorted(p.name for p in (root / split).iterdir()) == folders
        listed = (root / f"{split}_list_videos.txt").read_text().splitlines()
        expected = rows[(rows["split"] == split) & rows["label"].notna()]
        assert len(listed) == len(expected)
        for line in listed:
            relative, index = line.split(" ")
            clip = root / relative
            assert clip.is_file() and clip.parent.name == folders[int(index)]
    row = rows.iloc[1]  # abseiling, a0000000001, 10-20, train
    clip = root / "train" / "abseiling" / "a0000000001_000010_000020.mp4"
    assert clip.read_bytes() == Path(row["clip_path"]).read_bytes()
    assert clip.stat().st_ino == Path(row["clip_path"]).stat().st_ino  # hard-linked, not copied
    assert (root / "test" / "backflip_human" / "b0000000004_000040_000050.mp4").is_file()


def test_manifest_hashes_every_file_and_counts_per_class(release):
    out = release[1]
    root, manifest = out.root, out.manifest
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(manifest["files"]) == on_disk
    for name, entry in manifest["files"].items():
        assert hashlib.sha256((root / name).read_bytes()).hexdigest() == entry["sha256"]
    assert json.loads((root / "manifest.json").read_text()) == manifest
    assert manifest["clips"] == {"train": 9, "val": 3, "test": 4}
    assert manifest["unlabelled_test_clips"] == 1
    assert manifest["clips_with_media"] == {"train": 9, "val": 3, "test": 3}
    assert manifest["clips_per_class"]["train"] == dict.fromkeys(CLASSES, 3)


def test_release_notes_count_link_rot_and_additions_per_class_against_the_parent(release):
    out = release[1]
    notes = (out.root / "RELEASE_NOTES.md").read_text()
    assert f"Parent: {EDITION}" in notes and out.manifest["parent"] == EDITION
    assert "- lost to link-rot since the parent (videos no longer available): 3" in notes
    assert "- removed for other reasons: 1" in notes and "- added: 3" in notes
    assert "| abseiling | 7 | 3 | 0 | 1 | 5 |" in notes
    assert "| backflip (human) | 5 | 0 | 1 | 1 | 5 |" in notes
    # per split: abseiling lost 3 train clips and gained its test clip; backflip swapped a val clip for a test one
    assert "| abseiling | 6 | 3 | 1 | 1 | 0 | 1 |" in notes
    assert "| backflip (human) | 3 | 3 | 2 | 1 | 0 | 1 |" in notes
    changes = read_changes(out).set_index("class_name")
    assert changes.loc["abseiling"].to_dict() == {
        "in_parent": 7, "lost_to_link_rot": 3, "removed_otherwise": 0, "added": 1, "now": 5,
        "train_before": 6, "train_after": 3, "val_before": 1, "val_after": 1, "test_before": 0, "test_after": 1}
    assert changes.loc["massaging person's head", "lost_to_link_rot"] == 0


def test_rerun_with_the_same_content_returns_the_same_release_untouched(release, tmp_path):
    rows, first = release
    before = tree_bytes(first.root)
    second = write(rows, tmp_path / "releases")
    assert second.root == first.root and not second.created and second.manifest == first.manifest
    assert tree_bytes(first.root) == before
    assert sorted(p.name for p in (tmp_path / "releases").iterdir()) == [f"{STEM}-1", LATEST]


def test_two_clean_runs_write_byte_identical_releases(tmp_path):
    rows = edition_rows(clip_store(tmp_path))
    first, second = (write(rows, tmp_path / name / "releases") for name in ("a", "b"))
    assert first.name == second.name == f"{STEM}-1"
    assert tree_bytes(first.root) == tree_bytes(second.root)


def test_new_content_is_a_new_release_beside_its_unchanged_parent(release, tmp_path):
    rows, first = release
    releases = tmp_path / "releases"
    before = tree_bytes(first.root)
    # a year later: two abseiling videos of the first release are gone, one backflip clip replaces them
    gone = {"a0000000000", "a0000000001"}
    store = clip_store(tmp_path)
    (store / "n0000000000.mp4").write_bytes(b"new backflip clip")
    newer = pd.concat([rows[~rows["youtube_id"].isin(gone)], pd.DataFrame([{
        "label": "backflip (human)", "youtube_id": "n0000000000", "time_start": 5.0, "time_end": 15.0,
        "split": "train", "clip_path": str(store / "n0000000000.mp4")}])], ignore_index=True)
    second = write(newer, releases, gone=gone)
    assert second.created and second.name == f"{STEM}-2" and second.manifest["parent"] == f"{STEM}-1"
    assert second.manifest["content_sha256"] != first.manifest["content_sha256"]
    assert tree_bytes(first.root) == before, "the parent release is never rewritten"
    assert (releases / LATEST).read_text() == f"{STEM}-2\n"
    notes = (second.root / "RELEASE_NOTES.md").read_text()
    assert f"Parent: {STEM}-1" in notes
    assert "- lost to link-rot since the parent (videos no longer available): 2" in notes
    assert "| abseiling | 5 | 2 | 0 | 0 | 3 |" in notes and "| backflip (human) | 5 | 0 | 0 | 1 | 6 |" in notes
    assert "| abseiling | 3 | 1 | 1 | 1 | 1 | 1 |" in notes
    # the first release's content again is the first release, and LATEST points back at it
    again = write(rows, releases)
    assert again.root == first.root and not again.created
    assert (releases / LATEST).read_text() == f"{STEM}-1\n"


def test_a_release_reads_back_with_its_splits_and_unlabelled_test_rows(release):
    rows, out = release
    back = read_release(out)
    key = ["youtube_id", "time_start", "split"]
    assert sorted(map(tuple, back[key].values.tolist())) == sorted(
        map(tuple, rows.astype({"time_start": int})[key].values.tolist()))
    assert back.loc[back["youtube_id"] == "zzzzzzzzzzz", "label"].isna().all()


def test_a_parent_whose_files_were_edited_is_refused_naming_the_file(release, tmp_path):
    rows, first = release
    (first.root / "validate.csv").chmod(0o644)
    with open(first.root / "validate.csv", "a") as handle:
        handle.write("abseiling,x0000000000,0,10,validate\n")
    changed = rows[rows["youtube_id"] != "a0000000000"]
    with pytest.raises(ValueError, match=r"validate.csv is missing or differs from its sha256"):
        write(changed, tmp_path / "releases")
    assert sorted(p.name for p in (tmp_path / "releases").iterdir()) == [f"{STEM}-1", LATEST]


def test_a_latest_pointer_to_no_release_is_an_error(release, tmp_path):
    rows, _ = release
    (tmp_path / "releases" / LATEST).write_text("../../etc\n")
    with pytest.raises(ValueError, match="LATEST names '../../etc', which is not a release folder"):
        write(rows[rows["youtube_id"] != "a0000000000"], tmp_path / "releases")


def test_a_failed_write_leaves_the_previous_release_and_pointer_untouched(release, tmp_path):
    rows, first = release
    before = tree_bytes(first.root)
    broken = rows.copy()
    broken.loc[2, "clip_path"] = str(tmp_path / "clip_store" / "gone.mp4")
    with pytest.raises(FileNotFoundError, match="edition row 2 .*gone.mp4"):
        write(broken, tmp_path / "releases")
    assert tree_bytes(first.root) == before
    assert sorted(p.name for p in (tmp_path / "releases").iterdir()) == [f"{STEM}-1", LATEST]
    assert (tmp_path / "releases" / LATEST).read_text() == f"{STEM}-1\n"


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("label", "moonwalking", "label is not a class"),
        ("time_end", 10.5, "whole seconds"),
        ("youtube_id", "../../etc/x", "youtube_id must be 11 of"),
        ("split", "validate", "split is not one of"),
    ],
)
def test_bad_rows_are_refused_with_row_and_reason(tmp_path, column, value, reason):
    rows = edition_rows(clip_store(tmp_path))
    rows.loc[0, column] = value
    with pytest.raises(ValueError, match=f"edition row 0 .*{reason}"):
        write(rows, tmp_path / "releases")
    assert not (tmp_path / "releases").exists()


def test_a_clip_whose_source_ends_early_is_published_with_its_real_end(tmp_path):
    """An edition row 40-50 whose video ends at 45.32 s: its stored clip is recorded 40-45.32; the release row
    and the file name say 40-45 (whole seconds, as names truncate), never 40-50."""
    store = clip_store(tmp_path)
    rows = edition_rows(store)
    short = rows.index[(rows["youtube_id"] == "a0000000004")][0]  # abseiling, 40-50, test
    clips = pd.DataFrame({"youtube_id": rows["youtube_id"], "start": rows["time_start"],
                          "end": rows["time_end"], "path": rows["clip_path"]}).dropna(subset=["path"])
    clips.loc[short, "end"] = 45.32
    published = with_stored_clips(rows.drop(columns="clip_path"), clips)
    assert published.at[short, "time_end"] == 45 and published.at[short, "clip_path"] == rows.at[short, "clip_path"]
    unchanged = published.drop(index=short)
    assert unchanged["time_end"].tolist() == rows.drop(index=short)["time_end"].tolist()
    assert published.loc[published["label"].isna(), "clip_path"].tolist() == [""], "no clip, no path"
    root = write(published, tmp_path / "releases").root
    assert "abseiling,a0000000004,40,45,test" in (root / "private" / "test_labelled.csv").read_text().splitlines()
    assert (root / "test" / "abseiling" / "a0000000004_000040_000045.mp4").is_file()
    assert not (root / "test" / "abseiling" / "a0000000004_000040_000050.mp4").exists()
    assert published_end(45.32) == published_end(45.0) == 45
