"""Publish a finished edition as a new, immutable release folder that the official importer and the common
loaders read as-is.

Releases of one source edition live side by side as ``{releases}/{stem}-1``, ``{stem}-2``, ...: a sequence
number (not a content hash) so that names sort in publication order and a curator sees at a glance which
release came after which; content identity is what the manifest's ``content_sha256`` (the hash of every data
file) is for. Publishing content that an existing release already holds returns that release, so reruns
write nothing and two clean runs give byte-identical releases. A release folder is never rewritten; the
plain-text file ``{releases}/LATEST`` names the newest and is replaced atomically.

Layout of ``{release}/``::

    train.csv, validate.csv, test.csv     official format; test.csv has no labels and is sorted by video
    private/test_labelled.csv             the test split with labels (for the benchmark; do not publish)
    classes.txt                           class names in loader index order (sorted class folders)
    {split}_list_videos.txt               mmaction2 VideoDataset lists: "{split}/{folder}/{file} {index}"
    {split}/{folder}/{youtube_id}_{start:06d}_{end:06d}.mp4   the clips (split: train, val, test)
    RELEASE_NOTES.md                      against the parent: per class lost to link-rot, added; per split diff
    changes.csv                           the notes' numbers per class (release_diff's columns)
    manifest.json                         parent, content hash, counts per split and class; sha256 of every file

Class folders follow torchvision's ``Kinetics`` (``label`` with spaces -> ``_`` and ``'()`` dropped), so
``torchvision.datasets.Kinetics(root=release, split="train"|"val"|"test")`` reads the tree directly; every
class gets a folder in every split with clips, so folder indices agree across splits and with the lists.
Test clips sit under ``test/{folder}/`` from the private labels, as torchvision expects: the clip tree
therefore reveals test labels and belongs with the private files; publish only the CSVs.

Clips are hard-linked from the clip store (copied when the store is on another disk). A release is built in
a temporary sibling folder and renamed to its name at the end, so a half-written release never looks finished.
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
from collections.abc import Callable
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
CHANGES = "changes.csv"  # the notes' per-class numbers, for machines
CLASSES = "classes.txt"
LATEST = "LATEST"
_FOLDER = re.compile(r"[A-Za-z0-9_-]+")
_RELEASE_NAME = re.compile(r"[A-Za-z0-9._-]+")
CLIP_KEY = ["label", "youtube_id", "time_start"]  # a clip keeps its identity when only its end is corrected


@dataclass(frozen=True)
class Release:
    """Where the release is, what its manifest says, and whether this call wrote it (False: the same content
    was already released under that name)."""

    root: Path
    manifest: dict
    created: bool = True

    @property
    def name(self) -> str:
        return self.root.name


@dataclass(frozen=True)
class Parent:
    """What a new release is compared with: the newest release of its stem, or the source edition itself."""

    name: str
    rows: pd.DataFrame  # label (None for an unlabelled test clip), youtube_id, time_start, time_end, split


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


def _labelled_keys(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.dropna(subset=["label"]).astype({"time_start": int})[[*CLIP_KEY, "split"]]


def _found_in(rows: pd.DataFrame, other: pd.DataFrame, key: list[str]):
    """Mask of ``rows`` whose ``key`` values also occur in ``other``."""
    return pd.MultiIndex.from_frame(rows[key]).isin(pd.MultiIndex.from_frame(other[key]))


def release_diff(parent: pd.DataFrame, rows: pd.DataFrame, gone: set[str]) -> pd.DataFrame:
    """What changed since the parent, per class of labelled clips: in_parent - lost_to_link_rot -
    removed_otherwise + added = now, and the counts per split before and after (``train_before``, ...)."""
    before, after = _labelled_keys(parent), _labelled_keys(rows)
    dropped = before[~_found_in(before, after, CLIP_KEY)]
    lost = dropped["youtube_id"].isin(gone)
    columns = {"in_parent": before, "lost_to_link_rot": dropped[lost], "removed_otherwise": dropped[~lost],
               "added": after[~_found_in(after, before, CLIP_KEY)], "now": after}
    per_class = pd.concat([part.groupby("label").size().rename(name) for name, part in columns.items()], axis=1)
    both = pd.concat([before.assign(when="before"), after.assign(when="after")])
    order = [(split, when) for split in SPLIT_NAMES for when in ("before", "after")]
    per_split = both.groupby(["label", "split", "when"]).size().unstack(["split", "when"])
    per_split = per_split.reindex(columns=pd.MultiIndex.from_tuples(order))
    per_split.columns = [f"{split}_{when}" for split, when in order]
    changes = pd.concat([per_class.reindex(columns=list(columns)), per_split], axis=1).fillna(0).astype(int)
    return changes.rename_axis("class_name").sort_index().reset_index()


def changed_classes(changes: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``release_diff`` whose class lost, gained or moved a clip."""
    before = changes[[f"{split}_before" for split in SPLIT_NAMES]].to_numpy()
    after = changes[[f"{split}_after" for split in SPLIT_NAMES]].to_numpy()
    removed_or_added = changes[["lost_to_link_rot", "removed_otherwise", "added"]].to_numpy().any(axis=1)
    return changes[removed_or_added | (before != after).any(axis=1)]


def release_notes(name: str, parent: Parent, rows: pd.DataFrame, changes: pd.DataFrame) -> str:
    """Markdown: against the parent, clips lost to link-rot and added per class, and the per-split diff."""
    changed = changed_classes(changes)
    split_columns = [f"{split}_{when}" for split in SPLIT_NAMES for when in ("before", "after")]
    total = {split: (int((parent.rows["split"] == split).sum()), int((rows["split"] == split).sum()))
             for split in SPLIT_NAMES}
    lines = [
        f"# {name}: release notes",
        "",
        f"Parent: {parent.name}",
        "",
        f"- clips in the parent: {len(parent.rows)}",
        f"- lost to link-rot since the parent (videos no longer available): {int(changes['lost_to_link_rot'].sum())}",
        f"- removed for other reasons: {int(changes['removed_otherwise'].sum())}",
        f"- added: {int(changes['added'].sum())}",
        f"- clips in this release: {len(rows)}",
        *(f"- {split}: {was} -> {now}" for split, (was, now) in total.items()),
        "",
        "## Per class",
        "",
        "Labelled clips; rows of a public test file carry no label and are counted in the totals only.",
        "",
        "| class | in parent | lost to link-rot | removed otherwise | added | now |",
        "|---|---:|---:|---:|---:|---:|",
        *(f"| {r.class_name} | {r.in_parent} | {r.lost_to_link_rot} | {r.removed_otherwise} | {r.added} | {r.now} |"
          for r in changed.itertuples(index=False)),
        "",
        f"{len(changes) - len(changed)} other classes are unchanged.",
        "",
        f"## Diff against {parent.name}, per split",
        "",
        "| class | " + " | ".join(f"{split} before | {split} after" for split in SPLIT_NAMES) + " |",
        "|---|" + "---:|" * len(split_columns),
        *(f"| {r.class_name} | " + " | ".join(str(getattr(r, c)) for c in split_columns) + " |"
          for r in changed.itertuples(index=False)),
        "",
    ]
    return "\n".join(lines)


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _file_table(root: Path) -> dict[str, dict]:
    return {
        path.relative_to(root).as_posix(): {"sha256": _sha256(path), "bytes": path.stat().st_size}
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def content_sha256(files: dict[str, dict]) -> str:
    """One hash of the release's data: every file but the notes, changes and manifest, which describe the
    release against its parent."""
    lines = "".join(f"{name} {entry['sha256']}\n" for name, entry in sorted(files.items())
                    if name not in (NOTES, CHANGES, MANIFEST))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def _manifest(name: str, parent: str, rows: pd.DataFrame, root: Path, placed: dict[str, int]) -> dict:
    labelled = rows.dropna(subset=["label"])
    counts = {
        split: {str(k): int(v) for k, v in labelled[labelled["split"] == split].groupby("label").size().items()}
        for split in SPLIT_NAMES
    }
    files = _file_table(root)
    return {
        "edition": name,
        "parent": parent,
        "content_sha256": content_sha256(files),
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


def _versions(releases: Path, stem: str) -> dict[int, Path]:
    """The releases of ``stem`` by sequence number."""
    pattern = re.compile(re.escape(stem) + r"-([1-9][0-9]*)")
    found = (pattern.fullmatch(path.name) for path in releases.iterdir()) if releases.is_dir() else ()
    return {int(match.group(1)): releases / match.group(0) for match in found if match}


def releases_of(releases: Path, stem: str) -> list[Release]:
    """Every release of ``stem``, oldest first."""
    return [Release(path, read_manifest(path), created=False) for _, path in sorted(_versions(releases, stem).items())]


def read_manifest(root: Path) -> dict:
    path = root / MANIFEST
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"release {root}: {MANIFEST} is missing or unreadable ({err})") from err


def latest_release(releases: Path) -> Release | None:
    """The release ``LATEST`` names, or None before the first; a pointer to no release is an error."""
    pointer = releases / LATEST
    if not pointer.is_file():
        return None
    name = pointer.read_text().strip()
    if not _RELEASE_NAME.fullmatch(name) or not (releases / name).is_dir():
        raise ValueError(f"{pointer} names {name!r}, which is not a release folder in {releases}")
    return Release(releases / name, read_manifest(releases / name), created=False)


def _verified_csv(root: Path, manifest: dict, name: str) -> pd.DataFrame:
    """A release CSV, after checking it against the manifest's sha256 (a release is never edited)."""
    path = root / name
    expected = manifest.get("files", {}).get(name, {}).get("sha256")
    if expected is None or not path.is_file() or _sha256(path) != expected:
        raise ValueError(f"release {root}: {name} is missing or differs from its sha256 in {MANIFEST}")
    return pd.read_csv(path, dtype={"label": str, "youtube_id": str}, keep_default_na=False)


def read_release(release: Release) -> pd.DataFrame:
    """Every clip of a release (label None for a public test row without private label), splits train/val/test."""
    root, manifest = release.root, release.manifest
    labelled = pd.concat([_verified_csv(root, manifest, OFFICIAL_FILES["train"]),
                          _verified_csv(root, manifest, OFFICIAL_FILES["val"]),
                          _verified_csv(root, manifest, PRIVATE_TEST)], ignore_index=True)
    public_test = _verified_csv(root, manifest, OFFICIAL_FILES["test"])
    unlabelled = public_test[~_found_in(public_test, labelled, list(TEST_HEADER))].assign(label=None)
    rows = pd.concat([labelled, unlabelled[["label", *TEST_HEADER]]], ignore_index=True)
    return rows.assign(split=rows["split"].map({v: k for k, v in OFFICIAL_SPLIT.items()}))


def read_changes(release: Release) -> pd.DataFrame:
    """The release's per-class changes against its parent, as ``release_diff`` computed them."""
    return _verified_csv(release.root, release.manifest, CHANGES)


def _point_latest(releases: Path, name: str) -> None:
    atomic_write_bytes(releases / LATEST, f"{name}\n".encode("utf-8"))


def publish_release(
    rows: pd.DataFrame,
    releases: Path,
    *,
    stem: str,
    classes: tuple[str, ...],
    source: Parent,
    gone_among: Callable[[set[str]], set[str]],
) -> Release:
    """Publish ``rows`` (label, youtube_id, time_start, time_end, split[, clip_path]) as ``{releases}/{stem}-{n}``.

    The parent is the release ``LATEST`` names when it is one of ``stem``, else ``source`` (the edition the
    pipeline replenishes); ``gone_among(videos)`` says which of the parent's videos missing from ``rows`` are
    declared gone, which tells link-rot from other removals in the notes. Content that a release of ``stem`` already holds returns that release untouched (and points
    ``LATEST`` at it). A row's ``clip_path`` (absolute, in the clip store; empty when the release has no media
    for it) is linked into the clip tree. See the module docstring for the layout.
    """
    rows = _checked(rows.reset_index(drop=True), tuple(classes))
    folders = {label: class_folder(label) for label in classes}
    if len(set(folders.values())) != len(folders):
        raise ValueError("two classes share a folder name after torchvision's renaming")
    if not _RELEASE_NAME.fullmatch(stem):
        raise ValueError(f"release stem {stem!r} must be of [A-Za-z0-9._-]")
    releases = Path(releases)
    releases.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(dir=releases, prefix=f".{stem}.partial-"))
    try:
        _write_annotations(rows, building)
        ordered = sorted(classes, key=folders.__getitem__)
        atomic_write_bytes(building / CLASSES, "".join(f"{label}\n" for label in ordered).encode("utf-8"))
        placed = _write_clips(rows, building, folders)
        content = content_sha256(_file_table(building))
        versions = _versions(releases, stem)
        same = [release for release in releases_of(releases, stem) if release.manifest.get("content_sha256") == content]
        if same:
            shutil.rmtree(building)
            _point_latest(releases, same[0].name)
            return same[0]
        latest = latest_release(releases)
        parent = (Parent(latest.name, read_release(latest)) if latest is not None and latest.root in versions.values()
                  else source)
        name = f"{stem}-{max(versions, default=0) + 1}"
        missing = set(parent.rows["youtube_id"]) - set(rows["youtube_id"])
        changes = release_diff(parent.rows, rows, gone_among(missing))
        atomic_write_bytes(building / NOTES, release_notes(name, parent, rows, changes).encode("utf-8"))
        atomic_write_bytes(building / CHANGES, changes.to_csv(index=False, lineterminator="\n").encode("utf-8"))
        manifest = _manifest(name, parent.name, rows, building, placed)
        atomic_write_bytes(building / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8"))
        building.chmod(0o755)
        target = releases / name
        if target.exists():  # another run published this number meanwhile; never replace a release
            raise FileExistsError(f"release {target} appeared while this one was built; materialize again")
        os.rename(building, target)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    _point_latest(releases, name)
    return Release(target, manifest)
