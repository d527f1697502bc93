"""The edition's Great Expectations suites, built from the edition's rules.

Each suite validates one frame derived from the edition rows (columns label, youtube_id, time_start, time_end,
split), so that a failing value points at a class, a clip or a video by name:

- ``class_minimum``: per-class clip counts (all splits, every taxonomy class, zero included) >= the minimum;
- ``split_targets``: per-class val and test counts at their targets within a relative tolerance;
- ``clip_rows``: one clip per video within a class, ``0 < time_end - time_start <= 10``, labels in the
  taxonomy, canonical split names;
- ``video_splits``: no ``youtube_id`` in two splits.

Rows without a label (public test files) count towards no class and are skipped by the label expectations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import great_expectations as gx
import pandas as pd

from expectations import CLASS_MINIMUM, CLIP_ROWS, SPLIT_TARGETS, VIDEO_SPLITS

SPLIT_NAMES = ("train", "val", "test")
MAX_CLIP_SECONDS = 10


@dataclass(frozen=True)
class EditionRules:
    """What a finished edition must satisfy (production: minimum 700, val 50, test 100 per class)."""

    minimum: int
    taxonomy: tuple[str, ...]
    val_target: int = 50
    test_target: int = 100
    tolerance: float = 0.1      # val/test counts may stray this fraction of their target either way
    max_clip_seconds: float = MAX_CLIP_SECONDS

    def __post_init__(self) -> None:
        if self.minimum < 0 or self.val_target < 0 or self.test_target < 0:
            raise ValueError("minimum and split targets must be >= 0")
        if not 0 <= self.tolerance < 1:
            raise ValueError(f"tolerance {self.tolerance} must be a fraction in [0, 1)")
        if not self.taxonomy:
            raise ValueError("the taxonomy has no classes")


@dataclass(frozen=True)
class SuiteSpec:
    """One suite: the frame it checks (derived from edition rows) and the columns that name a failing row."""

    name: str
    derive: Callable[[pd.DataFrame, EditionRules], pd.DataFrame]
    index_columns: tuple[str, ...]
    expectations: tuple[gx.expectations.Expectation, ...]

    def suite(self) -> gx.ExpectationSuite:
        """A fresh GX suite object (GX binds suites to one context, so each run gets its own)."""
        return gx.ExpectationSuite(name=self.name, expectations=[e.copy() for e in self.expectations])


def class_counts(rows: pd.DataFrame, rules: EditionRules) -> pd.DataFrame:
    """One row per taxonomy class: clips in all splits, in val and in test (labelled rows only)."""
    labelled = rows.dropna(subset=["label"])
    per_split = labelled.groupby(["label", "split"]).size().unstack("split", fill_value=0)
    per_split = per_split.reindex(index=list(rules.taxonomy), columns=list(SPLIT_NAMES), fill_value=0)
    return pd.DataFrame(
        {
            "class_name": per_split.index,
            "clips": per_split.sum(axis=1).to_numpy(),
            "val": per_split["val"].to_numpy(),
            "test": per_split["test"].to_numpy(),
        }
    )


def clip_rows(rows: pd.DataFrame, rules: EditionRules) -> pd.DataFrame:
    """The edition's clips with their duration, the columns the row-level expectations read."""
    frame = rows[["label", "youtube_id", "time_start", "time_end", "split"]].reset_index(drop=True)
    return frame.assign(duration=frame["time_end"].astype(float) - frame["time_start"].astype(float))


def video_splits(rows: pd.DataFrame, rules: EditionRules) -> pd.DataFrame:
    """One row per video: how many distinct splits its clips sit in."""
    counts = rows.groupby("youtube_id")["split"].nunique()
    return pd.DataFrame({"youtube_id": counts.index, "splits": counts.to_numpy()})


def _around(target: int, tolerance: float) -> dict[str, float]:
    return {"min_value": target * (1 - tolerance), "max_value": target * (1 + tolerance)}


def edition_suites(rules: EditionRules) -> tuple[SuiteSpec, ...]:
    """The four suites of a finished edition under ``rules``."""
    expect = gx.expectations
    return (
        SuiteSpec(
            CLASS_MINIMUM,
            class_counts,
            ("class_name",),
            (expect.ExpectColumnValuesToBeBetween(column="clips", min_value=rules.minimum),),
        ),
        SuiteSpec(
            SPLIT_TARGETS,
            class_counts,
            ("class_name",),
            (
                expect.ExpectColumnValuesToBeBetween(column="val", **_around(rules.val_target, rules.tolerance)),
                expect.ExpectColumnValuesToBeBetween(column="test", **_around(rules.test_target, rules.tolerance)),
            ),
        ),
        SuiteSpec(
            CLIP_ROWS,
            clip_rows,
            ("label", "youtube_id", "time_start"),
            (
                expect.ExpectCompoundColumnsToBeUnique(column_list=["label", "youtube_id"]),
                expect.ExpectColumnValuesToBeBetween(
                    column="duration", min_value=0, max_value=rules.max_clip_seconds, strict_min=True
                ),
                expect.ExpectColumnValuesToBeInSet(column="label", value_set=list(rules.taxonomy)),
                expect.ExpectColumnValuesToBeInSet(column="split", value_set=list(SPLIT_NAMES)),
                expect.ExpectColumnValuesToNotBeNull(column="youtube_id"),
            ),
        ),
        SuiteSpec(
            VIDEO_SPLITS,
            video_splits,
            ("youtube_id",),
            (expect.ExpectColumnValuesToBeBetween(column="splits", max_value=1),),
        ),
    )
