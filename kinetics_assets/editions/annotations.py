"""Import and validate official Kinetics annotation CSVs, row by row.

Labelled files: ``label,youtube_id,time_start,time_end,split[,is_cc]``; test files: ``youtube_id,time_start,
time_end,split``. Every data line ends up in exactly one place: the accepted rows, the rejected rows (with file,
line number and reason) or the count of exact duplicates collapsed — never a crash, never a silent drop.
Lines are parsed one at a time so a stray quote spoils only its own line.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from kinetics_assets.editions.taxonomy import EDITIONS, load_classes

YOUTUBE_ID = re.compile(r"[A-Za-z0-9_-]{11}")
MAX_CLIP_SECONDS = 10
# Official files say "val" (Kinetics-400) or "validate" (later editions); rows keep the canonical name.
SPLITS = {"train": "train", "val": "val", "validate": "val", "test": "test"}
LABELLED_HEADER = ("label", "youtube_id", "time_start", "time_end", "split")
TEST_HEADER = ("youtube_id", "time_start", "time_end", "split")
OPTIONAL_COLUMNS = ("is_cc",)

ROW_COLUMNS = ["label", "youtube_id", "time_start", "time_end", "split", "is_cc", "source_file", "line"]
REJECTED_COLUMNS = ["source_file", "line", "reason", "raw"]


class RowError(ValueError):
    """A data row that cannot be accepted; the message is the reason recorded for it."""


@dataclass
class AnnotationImport:
    """The outcome of importing one or more annotation files into one edition."""

    edition: str
    rows: pd.DataFrame
    rejected: pd.DataFrame
    duplicates_collapsed: int = 0
    notes: list[str] = field(default_factory=list)


def validate_youtube_id(video_id: str) -> str:
    """Return ``video_id`` if it has YouTube's shape; anything else never reaches a path, URL or command."""
    if not YOUTUBE_ID.fullmatch(video_id):
        raise RowError(f"invalid youtube_id {video_id!r}: must be 11 characters of [A-Za-z0-9_-]")
    return video_id


def _parse_time(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise RowError(f"{name} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise RowError(f"{name} {text!r} is not a finite number")
    return value


def _parse_row(record: dict[str, str], classes: frozenset[str], edition: str) -> dict:
    label = record.get("label")
    if label is not None and label not in classes:
        raise RowError(f"label {label!r} is not a class of {edition}")
    video_id = validate_youtube_id(record["youtube_id"])
    start = _parse_time("time_start", record["time_start"])
    end = _parse_time("time_end", record["time_end"])
    if start < 0:
        raise RowError(f"time_start {record['time_start']} is negative")
    if start >= end:
        raise RowError(f"time_start {record['time_start']} is not before time_end {record['time_end']}")
    if end - start > MAX_CLIP_SECONDS:
        raise RowError(f"clip lasts {end - start:g} s; time_end - time_start must be <= {MAX_CLIP_SECONDS}")
    split = SPLITS.get(record["split"])
    if split is None:
        raise RowError(f"split {record['split']!r} is not one of {', '.join(SPLITS)}")
    if label is None and split != "test":
        raise RowError(f"row in split {record['split']!r} has no label; only test files may omit labels")
    is_cc = record.get("is_cc")
    if is_cc not in (None, "0", "1"):
        raise RowError(f"is_cc {is_cc!r} is not 0 or 1")
    return {
        "label": label,
        "youtube_id": video_id,
        "time_start": start,
        "time_end": end,
        "split": split,
        "is_cc": None if is_cc is None else int(is_cc),
    }


def _header_columns(header: list[str]) -> tuple[str, ...]:
    """The columns of a header, or a RowError saying why it is not an official header."""
    columns = tuple(name.strip() for name in header)
    for base in (LABELLED_HEADER, TEST_HEADER):
        if columns[: len(base)] == base and set(columns[len(base) :]) <= set(OPTIONAL_COLUMNS):
            return columns
    raise RowError(
        f"header {','.join(columns)!r} is not an official header "
        f"({','.join(LABELLED_HEADER)}[,is_cc] or {','.join(TEST_HEADER)})"
    )


def _split_line(text: str) -> list[str]:
    if text.count('"') % 2:
        raise csv.Error("unbalanced quotes")
    return next(csv.reader([text], strict=True))


def read_annotation_file(path: Path, edition: str) -> AnnotationImport:
    """Validate one annotation file of ``edition``."""
    classes = frozenset(load_classes(edition))
    source = str(path)
    accepted: list[dict] = []
    rejected: list[dict] = []
    notes: list[str] = []
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        notes.append(f"{source}: UTF-8 byte-order mark stripped")
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        rejected.append(_rejection(source, line, f"not UTF-8 text (byte {err.start})", ""))
        return _result(edition, accepted, rejected, notes)
    if "\r\n" in text:
        notes.append(f"{source}: CRLF line endings read as LF")
    lines = text.replace("\r\n", "\n").split("\n")
    if not text.strip():
        rejected.append(_rejection(source, 1, "empty file: no header and no rows", ""))
        return _result(edition, accepted, rejected, notes)

    header_error = None
    try:
        columns = _header_columns(_split_line(lines[0]))
    except (RowError, csv.Error) as err:
        header_error = f"unreadable header on line 1: {err}"
        rejected.append(_rejection(source, 1, header_error, lines[0]))
    data_lines = [(number, raw) for number, raw in enumerate(lines[1:], start=2) if raw.strip()]
    if header_error is None and not data_lines:
        rejected.append(_rejection(source, 1, "header only: no data rows", lines[0]))
    for number, raw in data_lines:
        if header_error is not None:
            rejected.append(_rejection(source, number, "skipped: the file's header is not official", raw))
            continue
        try:
            try:
                fields = _split_line(raw)
            except csv.Error as err:
                raise RowError(f"malformed CSV quoting: {err}") from None
            if len(fields) != len(columns):
                raise RowError(f"expected {len(columns)} fields ({','.join(columns)}), got {len(fields)}")
            row = _parse_row(dict(zip(columns, fields)), classes, edition)
        except RowError as err:
            rejected.append(_rejection(source, number, str(err), raw))
            continue
        accepted.append({**row, "source_file": source, "line": number})
    return _result(edition, accepted, rejected, notes)


def _rejection(source: str, line: int, reason: str, raw: str) -> dict:
    return {"source_file": source, "line": line, "reason": reason, "raw": raw}


def _result(edition: str, accepted: list[dict], rejected: list[dict], notes: list[str]) -> AnnotationImport:
    rows = pd.DataFrame(accepted, columns=ROW_COLUMNS)
    key = ["label", "youtube_id", "time_start", "time_end", "split"]
    duplicated = rows.duplicated(subset=key, keep="first")
    rows = rows[~duplicated].reset_index(drop=True)
    return AnnotationImport(
        edition=edition,
        rows=rows.astype({"time_start": float, "time_end": float, "line": int}),
        rejected=pd.DataFrame(rejected, columns=REJECTED_COLUMNS).astype({"line": int}),
        duplicates_collapsed=int(duplicated.sum()),
        notes=notes,
    )


def import_annotations(paths: list[Path], edition: str) -> AnnotationImport:
    """Validate several files of one edition; duplicates are collapsed across files too."""
    if not paths:
        raise ValueError("no annotation files given")
    parts = [read_annotation_file(Path(path), edition) for path in paths]
    merged = _result(
        edition,
        [row for part in parts for row in part.rows.to_dict("records")],
        [row for part in parts for row in part.rejected.to_dict("records")],
        [note for part in parts for note in part.notes],
    )
    merged.duplicates_collapsed += sum(part.duplicates_collapsed for part in parts)
    return merged


def guess_edition(paths: list[Path]) -> str:
    """The edition whose class list covers the most labels in the files (the smallest on a tie)."""
    labels: set[str] = set()
    for path in paths:
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
            reader = csv.DictReader(handle)
            labels |= {row["label"] for row in reader if row.get("label")}
    return max(EDITIONS, key=lambda edition: (len(labels & set(load_classes(edition))), -len(load_classes(edition))))
