"""Write a finished edition as a release folder that the official importer and the common loaders read as-is.

Layout of ``{release}/``::

    train.csv, validate.csv, test.csv     official format; test.csv has no labels and is sorted by video
    private/test_labelled.csv             the test split with labels (for the benchmark; do not publish)
    classes.txt                           class names in loader index order (sorted class folders)
    {split}_list_videos.txt               mmaction2 VideoDataset lists: "{split}/{folder}/{file} {index}"
    {split}/{folder}/{youtube_id}_{start:06d}_{end:06d}.mp4   the clips (split: train, val, test)
    RELEASE_NOTES.md                      per class: previous clips, removed by link-rot, added, now
    manifest.json                         counts per split and class; sha256 and size of every other file

Class folders follow torchvision's ``Kinetics`` (``label`` with spaces -> ``_`` and ``'()`` dropped), so
``torchvision.datasets.Kinetics(root=release, split="train"|"val"|"test")`` reads the tree directly; every
class gets a folder in every split with clips, so folder indices agree across splits and with the lists.
Test clips sit under ``test/{folder}/`` from the private labels, as torchvision expects: the clip tree
therefore reveals test labels and belongs with the private files; publish only the CSVs.

Clips are hard-linked from the clip store (copied when the store is on another disk). The whole release is
built in a temporary sibling folder and renamed into place at the end, so a half-written release never looks
finished and a rerun on the same inputs replaces the release with identical content.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import json
import math
import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from kinetics_assets.editions.annotations import (
    LABELLED_HEADER,
    MAX_CLIP_SECONDS,
    TEST_HEADER,
    YOUTUBE_ID,
)
from resources.storage import atomic_write_bytes

SPLIT_NAMES = ("train", "val", "test")
OFFICIAL_FILES = {"train": "train.csv", "val": "validate.csv", "test": "test.csv"}
OFFICIAL_SPLIT = {"train": "train", "val": "validate", "test": "test"}  # what the split column says in files
PRIVATE_TEST = "private/test_labelled.csv"
MANIFEST = "manifest.json"
NOTES = "RELEASE_NOTES.md"
CLASSES = "classes.txt"
_FOLDER = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Release:
    """Where the release went and what its manifest says."""

    root: Path
    manifest: dict


def class_folder(label: str) -> str:
    """The folder torchvision's Kinetics gives a class; refuses names that could escape the split folder."""
    folder = label.replace(" ", "_").replace("'", "").replace("(", "").replace(")", "")
    if not _FOLDER.fullmatch(folder):
        raise ValueError(f"class {label!r} does not make a safe folder name ({folder!r})")
    return folder


def clip_filename(youtube_id: str, start: int, end: int) -> str:
    """``{youtube_id}_{start:06d}_{end:06d}.mp4``, the name torchvision's Kinetics download gives a clip."""
    return f"{youtube_id}_{start:06d}_{end:06d}.mp4"


def published_end(end: float) -> int:
    """A clip's end as release rows and file names give it: whole seconds, truncated as clip names are (a clip
    whose source ends inside its window is recorded with its real, fractional end)."""
    return math.floor(end)


def with_stored_clips(rows: pd.DataFrame, clips: pd.DataFrame) -> pd.DataFrame:
    """Edition rows with the stored clip of each (``clips``: youtube_id, start, end, path of finished clips): its
    ``clip_path`` ("" when none), and its real end when its source ends inside the row's window, so that the
    row, the file name and the clip agree."""
    stored = clips.set_index(["youtube_id", "start"])
    keys = list(zip(rows["youtube_id"], rows["time_start"]))
    return rows.assign(clip_path=[stored["path"].get(key, "") for key in keys],
                       time_end=[min(end, published_end(stored["end"][key])) if key in stored.index else end
                                 for key, end in zip(keys, rows["time_end"])])


def _checked(rows: pd.DataFrame, classes: tuple[str, ...]) -> pd.DataFrame:
    """Rows with integer times, after checking every row; an error names the first bad row and the reason."""
    missing = {"label", "youtube_id", "time_start", "time_end", "split"} - set(rows.columns)
    if missing:
        raise ValueError(f"edition rows lack columns {sorted(missing)}")
    start, end = rows["time_start"].astype(float), rows["time_end"].astype(float)
    unlabelled = rows["label"].isna()
    in_range = (start >= 0) & (start < end) & (end <= start + MAX_CLIP_SECONDS)
    problems = [
        (~rows["youtube_id"].astype(str).str.fullmatch(YOUTUBE_ID.pattern), "youtube_id must be 11 of [A-Za-z0-9_-]"),
        (~rows["split"].isin(SPLIT_NAMES), f"split is not one of {', '.join(SPLIT_NAMES)}"),
        (unlabelled & (rows["split"] != "test"), "only test rows may lack a label"),
        (~unlabelled & ~rows["label"].isin(classes), "label is not a class of the edition"),
        ((start % 1 != 0) | (end % 1 != 0), "official files hold whole seconds"),
        (~in_range, f"need 0 <= time_start < time_end <= time_start + {MAX_CLIP_SECONDS}"),
    ]
    for bad, reason in problems:
        if bad.any():
            row = rows.loc[bad.idxmax()]
            raise ValueError(
                f"edition row {bad.idxmax()} ({row['label']!r}, {row['youtube_id']!r}, {row['time_start']}-"
                f"{row['time_end']}, {row['split']!r}): {reason} ({int(bad.sum())} rows in all)"
            )
    return rows.astype({"time_start": int, "time_end": int})


def _csv_bytes(frame: pd.DataFrame, header: tuple[str, ...]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(frame[list(header)].itertuples(index=False))
    return buffer.getvalue().encode("utf-8")


def _official(rows: pd.DataFrame, split: str) -> pd.DataFrame:
    part = rows[rows["split"] == split].assign(split=OFFICIAL_SPLIT[split])
    # The public test file is ordered by video, so row order cannot hint at labels.
    order = ["youtube_id", "time_start"] if split == "test" else ["label", "youtube_id", "time_start"]
    return part.sort_values(order)


def _write_annotations(rows: pd.DataFrame, root: Path) -> None:
    for split, name in OFFICIAL_FILES.items():
        header = TEST_HEADER if split == "test" else LABELLED_HEADER
        atomic_write_bytes(root / name, _csv_bytes(_official(rows, split), header))
    labelled_test = _official(rows, "test").dropna(subset=["label"]).sort_values(["label", "youtube_id"])
    atomic_write_bytes(root / PRIVATE_TEST, _csv_bytes(labelled_test, LABELLED_HEADER))


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError as err:
        if err.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
        shutil.copyfile(source, target)


def _write_clips(rows: pd.DataFrame, root: Path, folders: dict[str, str]) -> dict[str, int]:
    """Place every clip that has media; returns clips placed per split."""
    index = {folder: i for i, folder in enumerate(sorted(folders.values()))}
    placed = {}
    has_media = rows["clip_path"].fillna("").astype(str) != "" if "clip_path" in rows else False
    with_media = rows[has_media & rows["label"].notna()]
    for split in SPLIT_NAMES:
        part = with_media[with_media["split"] == split].sort_values(["label", "youtube_id", "time_start"])
        if part.empty:
            continue
        for folder in folders.values():
            (root / split / folder).mkdir(parents=True, exist_ok=True)
        lines = []
        for row in part.itertuples():
            source = Path(row.clip_path)
            if not source.is_file():
                raise FileNotFoundError(f"edition row {row.Index} ({row.youtube_id}): clip {source} is missing")
            folder = folders[row.label]
            relative = f"{split}/{folder}/{clip_filename(row.youtube_id, row.time_start, row.time_end)}"
            _link_or_copy(source, root / relative)
            lines.append(f"{relative} {index[folder]}\n")
        atomic_write_bytes(root / f"{split}_list_videos.txt", "".join(lines).encode("utf-8"))
        placed[split] = len(part)
    return placed


def _per_class(rows: pd.DataFrame | None, name: str) -> pd.Series:
    if rows is None or rows.empty:
        return pd.Series(dtype=int, name=name)
    return rows.dropna(subset=["label"]).groupby("label").size().rename(name)


def release_notes(
    edition: str, rows: pd.DataFrame, previous: pd.DataFrame, removed: pd.DataFrame, added: pd.DataFrame
) -> str:
    """Markdown: clips removed by link-rot and clips added, per class and in total (labelled clips)."""
    table = pd.concat(
        [_per_class(previous, "previous"), _per_class(removed, "removed"), _per_class(added, "added"),
         _per_class(rows, "now")],
        axis=1,
    ).fillna(0).astype(int).sort_index()
    changed = table[(table["removed"] > 0) | (table["added"] > 0)]
    lines = [
        f"# {edition}: release notes",
        "",
        f"- clips in the previous edition: {len(previous)}",
        f"- removed (videos no longer available): {len(removed)}",
        f"- added: {len(added)}",
        f"- clips in this edition: {len(rows)}",
        *(f"- {split}: {int((rows['split'] == split).sum())}" for split in SPLIT_NAMES),
        "",
        "Per class (labelled clips; rows of a public test file carry no label and are counted in the totals only):",
        "",
        "| class | previous | removed | added | now |",
        "|---|---:|---:|---:|---:|",
        *(f"| {label} | {r.previous} | {r.removed} | {r.added} | {r.now} |" for label, r in changed.iterrows()),
        "",
        f"{len(table) - len(changed)} other classes are unchanged.",
        "",
    ]
    return "\n".join(lines)


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _manifest(edition: str, rows: pd.DataFrame, root: Path, placed: dict[str, int]) -> dict:
    labelled = rows.dropna(subset=["label"])
    counts = {
        split: {str(k): int(v) for k, v in labelled[labelled["split"] == split].groupby("label").size().items()}
        for split in SPLIT_NAMES
    }
    files = {
        path.relative_to(root).as_posix(): {"sha256": _sha256(path), "bytes": path.stat().st_size}
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }
    return {
        "edition": edition,
        "clips": {split: int((rows["split"] == split).sum()) for split in SPLIT_NAMES},
        "unlabelled_test_clips": int((rows["split"] == "test").sum() - sum(counts["test"].values())),
        "clips_with_media": {split: placed.get(split, 0) for split in SPLIT_NAMES},
        "clips_per_class": counts,
        "files": files,
    }


def swap_folder_into_place(built: Path, target: Path) -> None:
    """Replace ``target`` by ``built`` with renames: readers see the old folder or the new one, never half."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(target, old)
    os.replace(built, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_release(
    rows: pd.DataFrame,
    out_dir: Path,
    *,
    edition: str,
    classes: tuple[str, ...],
    previous: pd.DataFrame,
    removed: pd.DataFrame,
    added: pd.DataFrame,
) -> Release:
    """Write the release of ``rows`` (label, youtube_id, time_start, time_end, split[, clip_path]) to ``out_dir``.

    ``classes`` is the edition's class list; ``previous``, ``removed`` and ``added`` (rows with a label column)
    feed the release notes. A row's ``clip_path`` (absolute, in the clip store; empty when the release has no
    media for it) is linked into the clip tree. See the module docstring for the layout.
    """
    rows = _checked(rows.reset_index(drop=True), tuple(classes))
    folders = {label: class_folder(label) for label in classes}
    if len(set(folders.values())) != len(folders):
        raise ValueError("two classes share a folder name after torchvision's renaming")
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.partial-"))
    try:
        _write_annotations(rows, building)
        ordered = sorted(classes, key=folders.__getitem__)
        atomic_write_bytes(building / CLASSES, "".join(f"{label}\n" for label in ordered).encode("utf-8"))
        placed = _write_clips(rows, building, folders)
        notes = release_notes(edition, rows, previous, removed, added)
        atomic_write_bytes(building / NOTES, notes.encode("utf-8"))
        manifest = _manifest(edition, rows, building, placed)
        atomic_write_bytes(building / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8"))
        building.chmod(0o755)
        swap_folder_into_place(building, out_dir)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return Release(out_dir, manifest)
