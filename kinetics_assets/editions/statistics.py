"""Clips-per-class statistics of an edition (the note's Table 1), per split and over all splits."""

from __future__ import annotations

import pandas as pd

from kinetics_assets.data_files import data_path

ALL_SPLITS = "all"
TABLE1_COLUMNS = ["edition", "split", "clips", "classes", "average", "minimum", "maximum"]


def clips_per_class(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per labelled class: its clip count in each split and in all splits together."""
    labelled = rows.dropna(subset=["label"])
    counts = labelled.groupby(["label", "split"]).size().unstack("split", fill_value=0)
    counts[ALL_SPLITS] = counts.sum(axis=1)
    counts = counts.rename_axis(columns=None).reset_index().rename(columns={"label": "class_name"})
    return counts.sort_values([ALL_SPLITS, "class_name"]).reset_index(drop=True)


def table1(rows: pd.DataFrame, edition: str) -> pd.DataFrame:
    """Table 1 rows: classes, average, minimum and maximum clips per class for each split and for all splits.

    Counts are over labelled rows (test files published without labels cannot be counted per class).
    The note rounds the average to whole clips; we keep two decimals.
    """
    counts = clips_per_class(rows)
    out = []
    for split in [s for s in ("train", "val", "test") if s in counts] + [ALL_SPLITS]:
        present = counts.loc[counts[split] > 0, split]
        if present.empty:
            continue
        out.append(
            {
                "edition": edition,
                "split": split,
                "clips": int(present.sum()),
                "classes": int(present.size),
                "average": round(float(present.mean()), 2),
                "minimum": int(present.min()),
                "maximum": int(present.max()),
            }
        )
    return pd.DataFrame(out, columns=TABLE1_COLUMNS)


def paper_table1() -> pd.DataFrame:
    """The note's Table 1, as shipped."""
    return pd.read_csv(data_path("paper_table1_clips_per_class.csv"))


def beside_paper(ours: pd.DataFrame) -> pd.DataFrame:
    """Our all-splits rows next to the note's row for the same edition (the note counts all splits together)."""
    paper = paper_table1().rename(
        columns={
            "dataset": "edition",
            "classes": "paper_classes",
            "average_clips_per_class": "paper_average",
            "minimum_clips_per_class": "paper_minimum",
        }
    )
    mine = ours[ours["split"] == ALL_SPLITS]
    return mine.merge(paper, on="edition", how="inner")
