"""Assign the new edition's clips to train/val/test without leaking a video across splits.

The new edition is the previous edition's retained clips plus the new clips. A retained clip keeps its split.
New clips are taken in the order of a seeded hash of their video id, so the result does not depend on the order
of the input rows, and each one goes

1. to the split its video already sits in (for any class: one video is never in two splits), else
2. to ``val`` while its class has fewer than ``targets.val`` val clips, else
3. to ``test`` while its class has fewer than ``targets.test`` test clips, else
4. to ``train``.

Stability across reruns: pass the last result as ``earlier``; a new clip found there keeps its split (as long
as its video has not since been pinned elsewhere), so adding one more clip never moves the others. Without
``earlier`` a rerun on the same inputs gives the same result, and a clip whose hash ranks after the clips
already in val/test moves nothing; one ranking earlier could shift later clips, which is what ``earlier`` is for.

Per-class counts are over labelled rows: retained test rows from a public test file (no label) keep their
split and pin their video but cannot count towards any class.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pandas as pd

from kinetics_assets.editions.annotations import YOUTUBE_ID

SPLIT_NAMES = ("train", "val", "test")
CLIP_KEY = ["label", "youtube_id", "time_start", "time_end"]
REQUIRED_NEW = CLIP_KEY
REQUIRED_RETAINED = [*CLIP_KEY, "split"]


@dataclass(frozen=True)
class SplitTargets:
    """Per-class clip counts that new clips fill in val and test (Kinetics-700: 50 and 100)."""

    val: int = 50
    test: int = 100

    def __post_init__(self) -> None:
        if self.val < 0 or self.test < 0:
            raise ValueError(f"split targets must be >= 0, got val={self.val}, test={self.test}")


def split_order_key(youtube_id: str, seed: int | str) -> str:
    """The seeded hash that orders new clips: the same video always ranks the same for the same seed."""
    return hashlib.sha256(f"{seed}:{youtube_id}".encode()).hexdigest()


def _require(frame: pd.DataFrame, columns: list[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks columns {missing}; it needs {columns}")


def _check_rows(frame: pd.DataFrame, name: str, new_clips: bool) -> None:
    """Every row names a valid video; retained rows a canonical split, new rows a label. Errors name the row."""
    bad_id = ~frame["youtube_id"].astype(str).str.fullmatch(YOUTUBE_ID.pattern)
    if bad_id.any():
        index = bad_id.idxmax()
        raise ValueError(f"{name} row {index}: invalid youtube_id {frame.at[index, 'youtube_id']!r}: "
                         "must be 11 characters of [A-Za-z0-9_-]")
    if new_clips:
        unlabelled = frame["label"].isna() | (frame["label"].astype(str) == "")
        if unlabelled.any():
            index = unlabelled.idxmax()
            raise ValueError(f"{name} row {index} ({frame.at[index, 'youtube_id']}): a new clip needs a label")
    else:
        bad_split = ~frame["split"].isin(SPLIT_NAMES)
        if bad_split.any():
            index = bad_split.idxmax()
            raise ValueError(f"{name} row {index} ({frame.at[index, 'youtube_id']}): split "
                             f"{frame.at[index, 'split']!r} is not one of {', '.join(SPLIT_NAMES)}")


def _video_splits(retained: pd.DataFrame) -> dict[str, str]:
    """The split each retained video sits in; a video already in two splits is an error in the input."""
    pairs = retained[["youtube_id", "split"]].drop_duplicates()
    leaking = pairs[pairs["youtube_id"].duplicated(keep=False)].sort_values(["youtube_id", "split"])
    if not leaking.empty:
        per_video = leaking.groupby("youtube_id")["split"].agg(sorted)
        examples = "; ".join(f"{vid} in {splits}" for vid, splits in per_video.head(5).items())
        raise ValueError(f"retained clips already put {len(per_video)} videos in two splits: {examples}")
    return dict(zip(pairs["youtube_id"], pairs["split"]))


def _earlier_splits(earlier: pd.DataFrame | None) -> dict[tuple, str]:
    if earlier is None or earlier.empty:
        return {}
    _require(earlier, REQUIRED_RETAINED, "earlier")
    return {tuple(key): split for *key, split in earlier[REQUIRED_RETAINED].itertuples(index=False)}


def assign_splits(
    retained: pd.DataFrame,
    new: pd.DataFrame,
    targets: SplitTargets = SplitTargets(),
    seed: int | str = 0,
    earlier: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The new edition's rows: ``retained`` with their splits plus ``new`` with assigned splits.

    ``retained`` needs label, youtube_id, time_start, time_end, split (canonical names; label may be missing
    for public test rows); ``new`` needs label, youtube_id, time_start, time_end. Other columns (a clip path,
    say) are kept. The result adds ``origin`` ("retained" or "new") and is sorted by split, label, video, start.
    """
    _require(retained, REQUIRED_RETAINED, "retained")
    _require(new, REQUIRED_NEW, "new")
    _check_rows(retained, "retained", new_clips=False)
    _check_rows(new, "new", new_clips=True)
    retained_keys = set(map(tuple, retained[CLIP_KEY].itertuples(index=False)))
    for index, key in zip(new.index, new[CLIP_KEY].itertuples(index=False)):
        if tuple(key) in retained_keys:
            raise ValueError(f"new row {index} ({key.youtube_id}, {key.label!r}) is already a retained clip")
    duplicated = new.duplicated(subset=CLIP_KEY)
    if duplicated.any():
        index = duplicated.idxmax()
        raise ValueError(f"new row {index} ({new.at[index, 'youtube_id']}) repeats an earlier new clip")
    new = new.reset_index(drop=True)

    video_split = _video_splits(retained)
    pinned = _earlier_splits(earlier)
    labelled = retained.dropna(subset=["label"])
    counts = labelled.groupby(["label", "split"]).size().to_dict()
    limits = {"val": targets.val, "test": targets.test}

    order = new.assign(_rank=new["youtube_id"].map(lambda vid: split_order_key(vid, seed)))
    order = order.sort_values(["_rank", "youtube_id", "label", "time_start"], kind="stable")
    # Clips kept from an earlier run claim their places first, so later-ranked newcomers cannot take them.
    from_earlier = [pinned.get(tuple(key)) for key in order[CLIP_KEY].itertuples(index=False)]
    order = order.assign(_earlier=from_earlier)
    order = pd.concat([order[order["_earlier"].notna()], order[order["_earlier"].isna()]])

    assigned: dict[object, str] = {}
    for index, vid, label, before in zip(order.index, order["youtube_id"], order["label"], order["_earlier"]):
        split = video_split.get(vid) or before or next(
            (s for s in ("val", "test") if counts.get((label, s), 0) < limits[s]), "train"
        )
        video_split[vid] = split
        counts[(label, split)] = counts.get((label, split), 0) + 1
        assigned[index] = split

    added = new.assign(split=pd.Series(assigned), origin="new")
    kept = retained.assign(origin="retained")
    edition = pd.concat([kept, added], ignore_index=True)
    edition = edition.sort_values(["split", "label", "youtube_id", "time_start"], na_position="last")
    return edition.reset_index(drop=True)
