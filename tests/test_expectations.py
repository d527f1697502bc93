"""The edition's GX suites: pass on a good edition, and each expectation fails on its own crafted violation,
naming every failing class, clip or video with its value."""

import pandas as pd
import pytest

from expectations.suites import EditionRules
from expectations.validate import validate_edition

CLASSES = tuple(f"class {i:02d}" for i in range(30))
RULES = EditionRules(minimum=8, taxonomy=CLASSES, val_target=2, test_target=3, tolerance=0.0)
SPLITS = ["val"] * 2 + ["test"] * 3 + ["train"] * 5


def good_edition() -> pd.DataFrame:
    """Ten clips per class, one video each, 2 val / 3 test / 5 train."""
    rows = [
        {"label": label, "youtube_id": f"c{c:02d}v{k:07d}", "time_start": 5.0, "time_end": 15.0, "split": split}
        for c, label in enumerate(CLASSES)
        for k, split in enumerate(SPLITS)
    ]
    return pd.DataFrame(rows)


def failures(result) -> dict[tuple[str, str], list[dict]]:
    """(suite, column) -> failing rows, for every failed expectation."""
    suites = result.suites.values()
    return {(s.name, e.column): list(e.failing) for s in suites for e in s.expectations if not e.success}


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    docs = tmp_path_factory.mktemp("store") / "data_docs"
    return validate_edition(good_edition(), RULES, docs_dir=docs), docs


def test_good_edition_passes_and_builds_data_docs(good):
    result, docs = good
    assert result.success and failures(result) == {}
    assert result.docs_index == docs / "index.html" and result.docs_index.is_file()
    pages = sorted(p.parent.parent.parent.name for p in (docs / "validations").rglob("*.html"))
    assert pages == sorted(result.suites)
    assert not [p for p in docs.parent.iterdir() if p.name.startswith(".")]  # no half-built site left behind


def test_rebuilding_docs_replaces_the_site(good, tmp_path):
    docs = tmp_path / "docs"
    (docs / "stale").mkdir(parents=True)
    result = validate_edition(good_edition(), RULES, docs_dir=docs)
    assert result.docs_index.is_file() and not (docs / "stale").exists()


def test_every_class_below_the_minimum_is_named_with_its_count():
    rows = good_edition()
    short = {label: n % 7 for n, label in enumerate(CLASSES[:25])}  # 25 classes: more than GX's sample of 20
    keep = [
        group.iloc[: short.get(label, len(group))] for label, group in rows.sort_values("split").groupby("label")
    ]
    rows = pd.concat(keep, ignore_index=True)
    result = validate_edition(rows, RULES)
    assert not result.success
    assert result.classes_below_minimum() == short
    assert {suite for suite, _ in failures(result)} == {"class_minimum", "split_targets"}


def test_a_class_with_no_clips_at_all_is_named():
    rows = good_edition()
    result = validate_edition(rows[rows["label"] != CLASSES[3]], RULES)
    assert result.classes_below_minimum() == {CLASSES[3]: 0}


def _edit(rows: pd.DataFrame, label: str, split: str, /, **changes) -> pd.DataFrame:
    index = rows.index[(rows["label"] == label) & (rows["split"] == split)][0]
    for column, value in changes.items():
        rows.loc[index, column] = value
    return rows


def _second_clip_of_a_video(rows: pd.DataFrame) -> pd.DataFrame:
    train = rows[(rows["label"] == CLASSES[0]) & (rows["split"] == "train")].iloc[[0]]
    return pd.concat([rows, train.assign(time_start=40.0, time_end=50.0)], ignore_index=True)


@pytest.mark.parametrize(
    ("violate", "expected"),
    [
        pytest.param(
            _second_clip_of_a_video,
            {("clip_rows", "label+youtube_id"): {("class 00", "c00v0000005")}},
            id="video-twice-in-a-class",
        ),
        pytest.param(
            lambda rows: _edit(rows, CLASSES[1], "val", youtube_id="c00v0000005"),  # a class-00 train video
            {("video_splits", "splits"): {("c00v0000005",)}},
            id="video-in-two-splits",
        ),
        pytest.param(
            lambda rows: _edit(_edit(rows, CLASSES[2], "train", time_end=16.5), CLASSES[4], "train", time_end=5.0),
            {("clip_rows", "duration"): {("class 02", "c02v0000005"), ("class 04", "c04v0000005")}},
            id="clip-too-long-and-empty",
        ),
        pytest.param(
            lambda rows: _edit(rows, CLASSES[5], "train", label="moonwalking"),
            {("clip_rows", "label"): {("moonwalking", "c05v0000005")}},
            id="label-outside-taxonomy",
        ),
        pytest.param(
            lambda rows: _edit(rows, CLASSES[6], "train", split="validate"),
            {("clip_rows", "split"): {("class 06", "c06v0000005")}},
            id="split-not-canonical",
        ),
        pytest.param(
            lambda rows: _edit(_edit(rows, CLASSES[7], "val", split="train"), CLASSES[8], "train", split="test"),
            {("split_targets", "val"): {("class 07",)}, ("split_targets", "test"): {("class 08",)}},
            id="val-and-test-off-target",
        ),
    ],
)
def test_each_expectation_fails_alone_on_its_violation(violate, expected):
    result = validate_edition(violate(good_edition()), RULES)
    found = failures(result)
    assert set(found) == set(expected)  # only the expectation that guards this rule fails
    for key, names in expected.items():
        naming = ("class_name",) if key[0] == "split_targets" else ("youtube_id",) if key[0] == "video_splits" else (
            "label", "youtube_id")
        assert {tuple(row[c] for c in naming) for row in found[key]} == names


def test_failing_rows_carry_their_values():
    rows = _edit(_edit(good_edition(), CLASSES[7], "val", split="train"), CLASSES[9], "val", split="train")
    result = validate_edition(rows, RULES)
    assert result.suites["split_targets"].failing_classes("val") == {CLASSES[7]: 1, CLASSES[9]: 1}
    table = result.suites["split_targets"].failing_rows()
    assert sorted(table["class_name"]) == [CLASSES[7], CLASSES[9]] and set(table["column"]) == {"val"}
    everything = result.failing_rows()
    assert set(everything["suite"]) == {"split_targets"} and len(everything) == 2


def test_rows_without_the_edition_columns_are_refused():
    with pytest.raises(ValueError, match="lack columns \\['split'\\]"):
        validate_edition(good_edition().drop(columns="split"), RULES)
