"""Table 1 on the shipped Kinetics-400 validation file, checked against counts computed independently."""

import csv
from collections import Counter

import pandas as pd
import pytest

from kinetics_assets.data_files import data_path
from kinetics_assets.editions.annotations import import_annotations
from kinetics_assets.editions.statistics import beside_paper, clips_per_class, table1
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
