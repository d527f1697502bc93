"""Clips-per-class statistics of an edition (the note's Table 1), per split and over all splits."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from kinetics_assets.data_files import data_path
from kinetics_assets.editions.annotations import FILE_LINE, Rejection, scan_annotations

ALL_SPLITS = "all"
TABLE1_COLUMNS = ["edition", "split", "clips", "classes", "average", "minimum", "maximum"]


def clips_per_class(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per labelled class: its clip count in each split and in all splits together."""
    return per_class(rows.dropna(subset=["label"]).groupby(["label", "split"]).size())


def per_class(sizes: pd.Series) -> pd.DataFrame:
    """clips_per_class from clip counts indexed by (label, split)."""
    counts = sizes.unstack("split", fill_value=0)
    counts[ALL_SPLITS] = counts.sum(axis=1)
    counts = counts.rename_axis(columns=None).reset_index().rename(columns={"label": "class_name"})
    return counts.sort_values([ALL_SPLITS, "class_name"]).reset_index(drop=True)


def table1(rows: pd.DataFrame, edition: str) -> pd.DataFrame:
    """Table 1 rows: classes, average, minimum and maximum clips per class for each split and for all splits.

    Counts are over labelled rows (test files published without labels cannot be counted per class).
    The note rounds the average to whole clips; we keep two decimals.
    """
    return table1_of(clips_per_class(rows), edition)


def table1_of(counts: pd.DataFrame, edition: str) -> pd.DataFrame:
    """Table 1 rows from a clips_per_class table."""
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


@dataclass
class FileStatistics:
    """Table 1 of annotation files and what was not counted: rejections by reason, whole files refused."""

    edition: str
    table: pd.DataFrame
    accepted: int = 0
    duplicates_collapsed: int = 0
    notes: list[str] = field(default_factory=list)
    rejected_by_reason: Counter = field(default_factory=Counter)
    first_rejection: Rejection | None = None
    refused: list[Rejection] = field(default_factory=list)

    def count(self, rejection: Rejection) -> None:
        self.rejected_by_reason[rejection.reason] += 1
        self.first_rejection = self.first_rejection or rejection
        if rejection.line == FILE_LINE:
            self.refused.append(rejection)


def file_statistics(paths: list[Path], edition: str) -> FileStatistics:
    """Table 1 of annotation files, streamed: rows are held compactly and rejections only counted, so memory
    does not follow the files' text (a 5M-row file is counted in well under 1 GB)."""
    stats = FileStatistics(edition, pd.DataFrame(columns=TABLE1_COLUMNS))
    accepted = scan_annotations(paths, edition, stats.count, stats.notes)
    keep = accepted.first_occurrences()
    stats.table = table1_of(per_class(accepted.clips_per_class_and_split(keep)), edition)
    stats.accepted, stats.duplicates_collapsed = int(keep.sum()), int(len(keep) - keep.sum())
    return stats


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
