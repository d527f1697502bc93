"""Import and validate official Kinetics annotation CSVs, row by row, streaming.

Labelled files: ``label,youtube_id,time_start,time_end,split[,is_cc]``; test files: ``youtube_id,time_start,
time_end,split``. Every data line ends up in exactly one place: the accepted rows, the rejected rows (with file,
line number and reason) or the count of exact duplicates collapsed — never a crash, never a silent drop.
Lines are read and parsed one at a time, so a stray quote, a stray byte or an endless line spoils only its own
line, and memory grows by the ~40 bytes an accepted row is held in (AcceptedRows), not by the file's text.
A file that is not text at all (UTF-16, binary) or not a regular file (a FIFO would block the reader forever)
is refused whole, before any of it is read: AnnotationFileError.
"""

from __future__ import annotations

import csv
import math
import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from kinetics_assets.editions.taxonomy import EDITIONS, load_classes

YOUTUBE_ID = re.compile(r"[A-Za-z0-9_-]{11}")
# Plain ASCII decimals only: float() would also take "１０", "١٠", "1_0" and "1e1".
DECIMAL = re.compile(r"[ \t]*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[ \t]*")
MAX_CLIP_SECONDS = 10
# The csv module's default field limit: no longer line is an annotation, and none is held in memory whole.
MAX_LINE_BYTES = 131_072
RAW_PREFIX = 200  # characters of an over-long line kept in its rejection
# Official files say "val" (Kinetics-400) or "validate" (later editions); rows keep the canonical name.
SPLITS = {"train": "train", "val": "val", "validate": "val", "test": "test"}
CANONICAL_SPLITS = ("train", "val", "test")
LABELLED_HEADER = ("label", "youtube_id", "time_start", "time_end", "split")
TEST_HEADER = ("youtube_id", "time_start", "time_end", "split")
OPTIONAL_COLUMNS = ("is_cc",)
FILE_LINE = 0  # the line number of a rejection that concerns a whole file
# Leading bytes of text that is not UTF-8 (UTF-32 before UTF-16: their marks share a prefix).
FOREIGN_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"),
                (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16"))
SNIFF_BYTES = 8192

ROW_COLUMNS = ["label", "youtube_id", "time_start", "time_end", "split", "is_cc", "source_file", "line"]
REJECTED_COLUMNS = ["source_file", "line", "reason", "raw"]


class RowError(ValueError):
    """A data row that cannot be accepted; the message is the reason recorded for it."""


class AnnotationFileError(ValueError):
    """A file that cannot be read as an annotation file at all; ``reason`` says why, the message adds the file."""

    def __init__(self, path: Path | str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


@dataclass(frozen=True)
class Rejection:
    """A line (or, at FILE_LINE, a whole file) not accepted, and why."""

    source_file: str
    line: int
    reason: str
    raw: str


@dataclass
class AnnotationImport:
    """The outcome of importing one or more annotation files into one edition."""

    edition: str
    rows: pd.DataFrame
    rejected: pd.DataFrame
    duplicates_collapsed: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def refused(self) -> pd.DataFrame:
        """The rejections of whole files (not text, not a regular file): nothing of them was read."""
        return self.rejected[self.rejected["line"] == FILE_LINE]


def validate_youtube_id(video_id: str) -> str:
    """Return ``video_id`` if it has YouTube's shape; anything else never reaches a path, URL or command."""
    if not YOUTUBE_ID.fullmatch(video_id):
        raise RowError(f"invalid youtube_id {video_id!r}: must be 11 characters of [A-Za-z0-9_-]")
    return video_id


def _parse_time(name: str, text: str) -> float:
    if not DECIMAL.fullmatch(text):
        raise RowError(f"{name} {text!r} is not a number (ASCII decimal digits only)")
    value = float(text)
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
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    if repeated:
        raise RowError(f"column {', '.join(map(repr, repeated))} appears more than once in the header")
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


_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _not_regular(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    return next((kind for test, kind in _FILE_KINDS if test(mode)), "not a regular file")


def open_regular_file(path: Path | str) -> BinaryIO:
    """``path`` opened for binary reading, or AnnotationFileError if it is not a regular file.

    A FIFO would block the reader until some writer appears and a device may never end, so the kind is checked
    with stat (which never blocks) before opening, and again on the open descriptor (opened non-blocking, so a
    FIFO swapped in meanwhile cannot block either).
    """
    try:
        kind = _not_regular(os.stat(path).st_mode)
        if kind is None:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            kind = _not_regular(os.fstat(fd).st_mode)
            if kind is None:
                os.set_blocking(fd, True)
                return os.fdopen(fd, "rb")
            os.close(fd)
    except OSError as err:
        raise AnnotationFileError(path, f"cannot be read: {err.strerror}") from None
    raise AnnotationFileError(path, f"not a regular file ({kind}); give an annotation CSV")


def _check_text(path: Path | str, head: bytes) -> None:
    """AnnotationFileError unless the file's first bytes can start UTF-8 text."""
    for mark, encoding in FOREIGN_BOMS:
        if head.startswith(mark):
            raise AnnotationFileError(path, f"{encoding} text (byte-order mark {mark.hex(' ')}), not UTF-8: "
                                            "save it as UTF-8")
    nul = head.find(b"\x00")
    if nul >= 0:
        raise AnnotationFileError(path, f"not text: NUL byte at offset {nul} (binary data, or UTF-16/32 without "
                                        "a byte-order mark)")


def _lines(handle: BinaryIO) -> Iterator[tuple[int, bytes | None]]:
    """(line number, the line's bytes) for each line; None for a line over MAX_LINE_BYTES, skipped unheld."""
    number = 0
    while chunk := handle.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(chunk) > MAX_LINE_BYTES and not chunk.endswith(b"\n"):
            while chunk and not chunk.endswith(b"\n"):
                chunk = handle.readline(MAX_LINE_BYTES)
            yield number, None
        else:
            yield number, chunk


def _decoded(handle: BinaryIO, source: str, notes: list[str]) -> Iterator[tuple[int, str, RowError | None]]:
    """(line number, text without its line ending, why the line is not text or None) for each line."""
    crlf = False
    for number, data in _lines(handle):
        if data is None:
            yield number, "(not kept: over-long line)", RowError(
                f"line longer than {MAX_LINE_BYTES} bytes (the csv module's field limit)")
            continue
        if data.endswith(b"\r\n"):
            if not crlf:
                crlf = True
                notes.append(f"{source}: CRLF line endings read as LF")
            data = data[:-2]
        else:
            data = data.removesuffix(b"\n")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            yield number, data.decode("utf-8", "replace")[:RAW_PREFIX], RowError(
                f"not UTF-8 text (byte {err.start} of the line)")
            continue
        yield number, text, RowError("contains a NUL byte: not text") if "\x00" in text else None


def _records(path: Path | str, notes: list[str]) -> Iterator[tuple[int, str, dict[str, str] | RowError]]:
    """(line number, raw text, {column: field} or the line's RowError) for each non-blank data line, and the
    header's RowError when it is not official (every data line is then rejected as skipped). Notes about the
    whole file (BOM, CRLF) go to ``notes``; AnnotationFileError, before anything is yielded, if the file is
    not UTF-8 text."""
    source = str(path)
    with open_regular_file(path) as handle:
        head = handle.peek(SNIFF_BYTES)[:SNIFF_BYTES]
        _check_text(path, head)
        if head.startswith(b"\xef\xbb\xbf"):
            notes.append(f"{source}: UTF-8 byte-order mark stripped")
            handle.read(3)
        header, columns, header_error, data_rows = "", (), None, 0
        for number, raw, error in _decoded(handle, source, notes):
            if number == 1:
                if error is not None:
                    raise AnnotationFileError(path, f"header on line 1 is unreadable: {error}")
                header = raw
                try:
                    columns = _header_columns(_split_line(raw))
                except (RowError, csv.Error) as err:
                    header_error = RowError(f"unreadable header on line 1: {err}")
                continue
            if error is None and not raw.strip():
                continue
            if data_rows == 0 and header_error is not None:
                yield 1, header, header_error
            data_rows += 1
            if error is None and header_error is not None:
                error = RowError("skipped: the file's header is not official")
            if error is None:
                try:
                    fields = _split_line(raw)
                except csv.Error as err:
                    error = RowError(f"malformed CSV quoting: {err}")
                else:
                    if len(fields) != len(columns):
                        error = RowError(f"expected {len(columns)} fields ({','.join(columns)}), got {len(fields)}")
            yield number, raw, error if error is not None else dict(zip(columns, fields))
        if data_rows == 0:
            if not header.strip():
                yield 1, "", RowError("empty file: no header and no rows")
            else:
                yield 1, header, header_error or RowError("header only: no data rows")


def scan_annotation_file(path: Path | str, edition: str, notes: list[str]) -> Iterator[dict | Rejection]:
    """Each data line of ``path`` as its validated row (with ``line``) or as its Rejection; see _records."""
    classes = frozenset(load_classes(edition))
    source = str(path)
    for number, raw, record in _records(path, notes):
        try:
            if isinstance(record, RowError):
                raise record
            row = _parse_row(record, classes, edition)
        except RowError as err:
            yield Rejection(source, number, str(err), raw)
            continue
        row["line"] = number
        yield row


# One accepted row in 43 bytes; the first five fields are the exact-duplicate key (30 bytes, packed).
KEY_DTYPE = np.dtype([("label", "<i2"), ("split", "i1"), ("youtube_id", "S11"), ("time_start", "<f8"),
                      ("time_end", "<f8")])
EXTRA_DTYPE = np.dtype([("is_cc", "i1"), ("source", "<i4"), ("line", "<i8")])
NONE_CODE = -1  # no label (test files), no is_cc
CHUNK_ROWS = 16_384


def _key_hashes(keys: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each packed key (FNV-style over its four 8-byte words, then a murmur finalizer)."""
    words = np.zeros((len(keys), 4), dtype=np.uint64)
    words.view(np.uint8)[:, : KEY_DTYPE.itemsize] = keys.view(np.uint8).reshape(len(keys), KEY_DTYPE.itemsize)
    hashes = np.full(len(keys), 0xCBF29CE484222325, dtype=np.uint64)
    for column in words.T:
        hashes = (hashes ^ column) * np.uint64(0x100000001B3)
    hashes ^= hashes >> np.uint64(33)
    hashes *= np.uint64(0xFF51AFD7ED558CCD)
    return hashes ^ (hashes >> np.uint64(33))


class AcceptedRows:
    """The accepted rows of an edition held as numpy records in chunks (43 bytes a row, plus an 8-byte hash)
    instead of Python objects, so millions of rows fit in a few hundred MB.

    Exact duplicates are found by sorting the hashes; only rows whose hash another row shares are compared
    byte for byte, so a hash collision never merges two different rows.
    """

    def __init__(self, edition: str):
        self.classes = load_classes(edition)
        self._label_code = {name: code for code, name in enumerate(self.classes)}
        self._split_code = {name: code for code, name in enumerate(CANONICAL_SPLITS)}
        self.sources: list[str] = []
        self._pending: list[tuple] = []
        self._keys: list[np.ndarray] = []
        self._extras: list[np.ndarray] = []
        self._hashes: list[np.ndarray] = []

    def add(self, row: dict, source: int) -> None:
        """Hold one row of ``self.sources[source]``; -0 and 0 are one time (the key compares bytes)."""
        label = NONE_CODE if row["label"] is None else self._label_code[row["label"]]
        self._pending.append((label, self._split_code[row["split"]], row["youtube_id"].encode("ascii"),
                              row["time_start"] + 0.0, row["time_end"] + 0.0,
                              NONE_CODE if row["is_cc"] is None else row["is_cc"], source, row["line"]))
        if len(self._pending) == CHUNK_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            key_fields = len(KEY_DTYPE.names)
            keys = np.array([item[:key_fields] for item in self._pending], dtype=KEY_DTYPE)
            self._keys.append(keys)
            self._hashes.append(_key_hashes(keys))
            self._extras.append(np.array([item[key_fields:] for item in self._pending], dtype=EXTRA_DTYPE))
            self._pending = []

    def _column(self, chunks: list[np.ndarray], dtype: np.dtype, name: str | None = None) -> np.ndarray:
        """The chunks (or one field of them) as one array."""
        self._flush()
        parts = [chunk if name is None else chunk[name] for chunk in chunks]
        return np.concatenate(parts) if parts else np.empty(0, dtype if name is None else dtype[name])

    def first_occurrences(self) -> np.ndarray:
        """A mask of the rows that are not an exact repeat of an earlier row (label, id, window, split)."""
        hashes = self._column(self._hashes, np.dtype(np.uint64))
        order = np.argsort(hashes, kind="stable")
        ordered = hashes[order]
        del hashes
        shared = np.flatnonzero(ordered[1:] == ordered[:-1])
        keep = np.ones(len(ordered), dtype=bool)
        seen: set[bytes] = set()
        starts = np.cumsum([0, *map(len, self._keys)])
        for row in np.unique(np.concatenate([order[shared], order[shared + 1]])):  # file order
            chunk = int(np.searchsorted(starts, row, side="right")) - 1
            key = self._keys[chunk][row - starts[chunk]].tobytes()
            if key in seen:
                keep[row] = False
            seen.add(key)
        return keep

    def clips_per_class_and_split(self, keep: np.ndarray) -> pd.Series:
        """The kept labelled rows counted per (label, split), only the pairs present (as a groupby counts)."""
        labels = self._column(self._keys, KEY_DTYPE, "label")[keep].astype(np.int64)
        splits = self._column(self._keys, KEY_DTYPE, "split")[keep].astype(np.int64)
        labelled = labels != NONE_CODE
        width = len(CANONICAL_SPLITS)
        counts = np.bincount(labels[labelled] * width + splits[labelled], minlength=len(self.classes) * width)
        present = np.flatnonzero(counts)
        index = pd.MultiIndex.from_arrays([np.array(self.classes, dtype=object)[present // width],
                                           np.array(CANONICAL_SPLITS, dtype=object)[present % width]],
                                          names=["label", "split"])
        return pd.Series(counts[present], index=index, dtype="int64")

    def frame(self, keep: np.ndarray) -> pd.DataFrame:
        """The kept rows as ROW_COLUMNS (``is_cc`` typed as pandas would type the rows' ints and Nones)."""
        kept, extra = self._column(self._keys, KEY_DTYPE)[keep], self._column(self._extras, EXTRA_DTYPE)[keep]
        cc = extra["is_cc"]
        missing = cc == NONE_CODE
        is_cc = (np.full(len(cc), None, dtype=object) if missing.all() else
                 cc.astype("int64") if not missing.any() else np.where(missing, np.nan, cc))
        return pd.DataFrame({
            "label": np.array([*self.classes, None], dtype=object)[kept["label"]],
            "youtube_id": kept["youtube_id"].astype(str).astype(object),
            "time_start": kept["time_start"], "time_end": kept["time_end"],
            "split": np.array(CANONICAL_SPLITS, dtype=object)[kept["split"]],
            "is_cc": is_cc, "source_file": np.array(self.sources, dtype=object)[extra["source"]],
            "line": extra["line"].astype("int64")}, columns=ROW_COLUMNS)


def scan_annotations(paths: list[Path], edition: str, on_rejection: Callable[[Rejection], None],
                     notes: list[str]) -> AcceptedRows:
    """Stream several files of one edition into AcceptedRows; each rejection goes to ``on_rejection`` (a file
    that cannot be read as one at line FILE_LINE), so a caller may keep them all or only count them."""
    if not paths:
        raise ValueError("no annotation files given")
    accepted = AcceptedRows(edition)
    for path in paths:
        source = len(accepted.sources)
        accepted.sources.append(str(path))
        try:
            for item in scan_annotation_file(path, edition, notes):
                if isinstance(item, Rejection):
                    on_rejection(item)
                else:
                    accepted.add(item, source)
        except AnnotationFileError as err:
            on_rejection(Rejection(str(path), FILE_LINE, err.reason, ""))
    return accepted


def import_annotations(paths: list[Path], edition: str) -> AnnotationImport:
    """Validate several files of one edition; exact duplicates are collapsed across files too."""
    rejected: list[Rejection] = []
    notes: list[str] = []
    accepted = scan_annotations([Path(path) for path in paths], edition, rejected.append, notes)
    keep = accepted.first_occurrences()
    return AnnotationImport(
        edition=edition,
        rows=accepted.frame(keep),
        rejected=pd.DataFrame([asdict(r) for r in rejected], columns=REJECTED_COLUMNS).astype({"line": int}),
        duplicates_collapsed=int(len(keep) - keep.sum()),
        notes=notes,
    )


def read_annotation_file(path: Path, edition: str) -> AnnotationImport:
    """Validate one annotation file of ``edition``."""
    return import_annotations([path], edition)


def guess_edition(paths: list[Path]) -> str:
    """The edition whose class list covers the most labels in the files (the smallest on a tie).

    AnnotationFileError if a file cannot be read as text at all."""
    labels: set[str] = set()
    for path in paths:
        labels |= {record["label"] for _, _, record in _records(path, [])
                   if isinstance(record, dict) and record.get("label")}
    return max(EDITIONS, key=lambda edition: (len(labels & set(load_classes(edition))), -len(load_classes(edition))))
