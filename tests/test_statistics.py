"""Table 1 on the shipped Kinetics-400 validation file, checked against counts computed independently."""

import csv
import tracemalloc
from collections import Counter

import pandas as pd
import pytest

from kinetics_assets.data_files import data_path
from kinetics_assets.editions.annotations import import_annotations
from kinetics_assets.editions.statistics import beside_paper, clips_per_class, file_statistics, table1
from kinetics_assets.editions.taxonomy import lineage, load_classes


@pytest.fixture(scope="module")
def k400_val():
    return import_annotations([data_path("kinetics400_val.csv")], "Kinetics-400")


def test_shipped_k400_val_imports_without_rejections(k400_val):
    assert len(k400_val.rows) == 19906
    assert k400_val.rejected.empty and k400_val.duplicates_collapsed == 0


def test_table1_matches_an_independent_count(k400_val):
    with open(data_path("kinetics400_val.csv"), newline="") as handle:
        per_class = Counter(row["label"] for row in csv.DictReader(handle))
    counts = list(per_class.values())
    stats = table1(k400_val.rows, "Kinetics-400").set_index("split")
    assert list(stats.index) == ["val", "all"]
    val = stats.loc["val"]
    assert val["classes"] == len(per_class) == 400
    assert val["clips"] == sum(counts)
    assert val["minimum"] == min(counts) and val["maximum"] == max(counts)
    assert val["average"] == round(sum(counts) / len(counts), 2)


def test_counts_per_split_and_classes_missing_from_a_split():
    rows = pd.DataFrame(
        {
            "label": ["a", "a", "a", "b", "b", None],
            "split": ["train", "train", "val", "train", "test", "test"],
        }
    )
    counts = clips_per_class(rows).set_index("class_name")
    assert counts.loc["a"].to_dict() == {"test": 0, "train": 2, "val": 1, "all": 3}
    stats = table1(rows, "x").set_index("split")
    assert stats.loc["val", "classes"] == 1  # b has no val clips: not counted as a class with 0
    assert stats.loc["all", "clips"] == 5  # the unlabelled test row cannot be counted per class
    assert (stats.loc["all", "minimum"], stats.loc["all", "average"]) == (2, 2.5)


def test_paper_row_is_shown_beside_ours_for_the_same_edition(k400_val):
    paper = beside_paper(table1(k400_val.rows, "Kinetics-400"))
    assert paper[["paper_classes", "paper_average", "paper_minimum"]].iloc[0].tolist() == [400, 683, 303]


def test_lineage_between_editions():
    k600 = lineage("Kinetics-400", "Kinetics-600")
    status = k600.groupby("status").size().to_dict()
    assert status["kept"] + status["renamed_by_case"] + status["added"] == 600
    assert status["kept"] + status["renamed_by_case"] + status["dropped"] == 400
    renamed = k600[k600["status"] == "renamed_by_case"].iloc[0]
    assert renamed["previous_name"].lower() == renamed["class_name"].lower()
    assert renamed["previous_name"] != renamed["class_name"]
    assert set(lineage("Kinetics-700", "Kinetics-700-2020")["status"]) == {"kept"}
    assert len(load_classes("Kinetics-700")) == 700


def test_unknown_edition_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown edition 'Kinetics-800'"):
        load_classes("Kinetics-800")


def test_file_statistics_streams_in_memory_far_below_the_files_text(tmp_path):
    """5M rows peaked at 5.1 GB when every row became Python objects (~1 KB a row: 29 MB here); streamed, a row
    costs ~51 bytes beyond one chunk of pending rows (6 MB here)."""
    rows = 30_000
    classes = load_classes("Kinetics-400")
    path = tmp_path / "big.csv"
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("label,youtube_id,time_start,time_end,split,is_cc\n")
        handle.writelines(f"{classes[n % 400]},{n:011d},{n % 600},{n % 600 + 10},{('train', 'val')[n % 2]},0\n"
                          for n in range(rows))
        handle.write(f"{classes[0]},{0:011d},0,10,train,0\n")  # an exact repeat of the first row
    tracemalloc.start()
    try:
        stats = file_statistics([path], "Kinetics-400")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (stats.accepted, stats.duplicates_collapsed, sum(stats.rejected_by_reason.values())) == (rows, 1, 0)
    assert stats.table.set_index("split").loc["all", "clips"] == rows
    assert peak < 400 * rows, f"peak {peak / 1e6:.1f} MB for {path.stat().st_size / 1e6:.1f} MB of CSV"


def test_streamed_table1_equals_the_table_of_the_imported_rows(k400_val):
    streamed = file_statistics([data_path("kinetics400_val.csv")], "Kinetics-400")
    pd.testing.assert_frame_equal(streamed.table, table1(k400_val.rows, "Kinetics-400"))
    assert (streamed.accepted, streamed.duplicates_collapsed) == (len(k400_val.rows), 0)
