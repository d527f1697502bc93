"""Rater votes: parse vote files from the crowd inbox, validate them row by row, import them exactly once.

Two formats arrive, chosen by file extension:

`.csv` — one vote per row, UTF-8, header with (at least) `task_id, rater_id, answer, submitted_at`:
answer is `yes`, `no` or `unsure`; submitted_at is an ISO-8601 timestamp with a timezone (`Z` or an offset:
raters work in every timezone, so a naive time is ambiguous and rejected) and not in the future (beyond
MAX_CLOCK_SKEW: no vote is cast later than it is imported). Extra columns are ignored; a column named twice
rejects the file, and a row the csv module cannot read (a field over its 131,072-character limit) is one
rejected row.

`.json` — a Label Studio export ("JSON" export type): a list of tasks, each with `data.task_id` (the id we
exported, see tasks.py) and `annotations[]`, each annotation with `completed_by` (a user id, or an object with
`id`/`email` when exported with annotator details), `created_at` and `result[]` whose `choices` item holds
`value.choices == [answer]`. A cancelled (skipped) annotation is not a vote.

Every row ends up either as a vote or as a rejection naming the file, the row (`line N` for CSV,
`[task].annotations[k]` for JSON) and the reason. The import ledger (a SQLite file or PostgreSQL) makes import
append-only and idempotent: a file is identified by the sha256 of its bytes, so the same bytes twice add nothing,
while a changed file is a new file whose votes are added (repeats of votes already held are rejected as
duplicates)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Collection, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from kinetics_assets.voting.tasks import ANSWERS
from resources.ledger_database import LedgerConnection, LedgerLocation, connect

VOTE_FIELDS = ("task_id", "rater_id", "answer", "submitted_at")
VOTE_COLUMNS = [*VOTE_FIELDS, "source_file", "row"]
REJECTED_COLUMNS = ["source_file", "row", "reason"]
MAX_RATER_ID = 128
MAX_CLOCK_SKEW = timedelta(minutes=10)  # how far ahead of our clock a rater's platform clock may be


class VoteError(ValueError):
    """A row that is not a valid vote; the message is the recorded reason."""


@dataclass(frozen=True)
class RawVote:
    """One vote as read from a file, before validation."""

    row: str
    task_id: object = None
    rater_id: object = None
    answer: object = None
    submitted_at: object = None
    problem: str | None = None   # set when the row could not even be read as a vote


@dataclass
class ParsedVotes:
    votes: pd.DataFrame      # VOTE_COLUMNS
    rejected: pd.DataFrame   # REJECTED_COLUMNS


def _timestamp(value: object) -> str:
    """The timestamp as UTC ISO-8601, or VoteError."""
    try:
        moment = datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise VoteError(f"malformed timestamp {value!r}: not ISO-8601") from None
    if moment.tzinfo is None:
        raise VoteError(f"malformed timestamp {value!r}: no timezone")
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        raise VoteError(f"timestamp {value!r} is out of range") from None
    if moment > datetime.now(UTC) + MAX_CLOCK_SKEW:
        raise VoteError(f"timestamp {value!r} is in the future (more than {MAX_CLOCK_SKEW} ahead of this clock)")
    return moment.isoformat()


def _rater(value: object) -> str:
    rater = str(value).strip() if value is not None else ""
    if not rater or len(rater) > MAX_RATER_ID or not rater.isprintable():
        raise VoteError(f"invalid rater_id {value!r}: must be 1-{MAX_RATER_ID} printable characters")
    return rater


def _validate(raw: RawVote, known_tasks: Collection[str]) -> dict:
    task = str(raw.task_id).strip() if raw.task_id is not None else ""
    if task not in known_tasks:
        raise VoteError(f"unknown task {raw.task_id!r}")
    answer = str(raw.answer).strip().lower() if raw.answer is not None else ""
    if answer not in ANSWERS:
        raise VoteError(f"unknown answer {raw.answer!r}: must be one of {', '.join(ANSWERS)}")
    return {"task_id": task, "rater_id": _rater(raw.rater_id), "answer": answer,
            "submitted_at": _timestamp(raw.submitted_at)}


def _csv_votes(text: str) -> Iterator[RawVote]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip() for name in next(reader)]
    except csv.Error as exc:
        raise VoteError(f"unreadable header: {exc}") from None
    missing = [name for name in VOTE_FIELDS if name not in header]
    if missing:
        raise VoteError(f"missing columns: {', '.join(missing)} (header: {', '.join(header)})")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise VoteError(f"column {', '.join(map(repr, repeated))} appears more than once in the header")
    index = {name: header.index(name) for name in VOTE_FIELDS}
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # the reader resumes at the next line
            yield RawVote(f"line {reader.line_num}", problem=f"unreadable CSV row: {exc}")
            continue
        if not any(field.strip() for field in fields):
            continue
        row = f"line {reader.line_num}"
        if len(fields) != len(header):
            yield RawVote(row, problem=f"{len(fields)} fields, the header has {len(header)}")
            continue
        yield RawVote(row, *(fields[index[name]] for name in VOTE_FIELDS))


def _choice(result: object) -> str:
    """The one answer chosen in an annotation's result list, or VoteError."""
    choices = [item for item in result if isinstance(item, dict) and item.get("type") == "choices"] \
        if isinstance(result, list) else []
    if len(choices) != 1:
        raise VoteError(f"expected one choices result, found {len(choices)}")
    picked = (choices[0].get("value") or {}).get("choices")
    if not isinstance(picked, list) or len(picked) != 1:
        raise VoteError(f"expected exactly one choice, got {picked!r}")
    return picked[0]


def _annotation_vote(row: str, task_id: object, annotation: object) -> RawVote:
    if not isinstance(annotation, dict):
        return RawVote(row, problem="annotation is not an object")
    if annotation.get("was_cancelled"):
        return RawVote(row, problem="cancelled annotation: the rater skipped the task")
    try:
        answer = _choice(annotation.get("result"))
    except VoteError as exc:
        return RawVote(row, problem=str(exc))
    return RawVote(row, task_id, _completed_by(annotation.get("completed_by")), answer, annotation.get("created_at"))


def _completed_by(value: object) -> object:
    if isinstance(value, dict):
        return value.get("email") or value.get("id")
    return value


def _label_studio_votes(text: str) -> Iterator[RawVote]:
    try:
        tasks = json.loads(text)
    except json.JSONDecodeError as exc:
        raise VoteError(f"not valid JSON: {exc}") from None
    if not isinstance(tasks, list):
        raise VoteError("not a Label Studio export: expected a JSON list of tasks")
    for i, task in enumerate(tasks):
        data = task.get("data") if isinstance(task, dict) else None
        if not isinstance(data, dict) or not isinstance(task.get("annotations", []), list):
            yield RawVote(f"[{i}]", problem="task without a data object or annotations list")
            continue
        for k, annotation in enumerate(task.get("annotations", [])):
            yield _annotation_vote(f"[{i}].annotations[{k}]", data.get("task_id"), annotation)


def _rejected(name: str, row: str, reason: str) -> dict:
    return {"source_file": name, "row": row, "reason": reason}


def parse_vote_file(name: str, data: bytes, known_tasks: Collection[str]) -> ParsedVotes:
    """Votes and rejections of one file; a file-level problem (empty, undecodable, wrong header or
    structure, unsupported type) rejects the whole file as row `file`."""
    votes, rejected, seen = [], [], {}
    try:
        if not data.strip():
            raise VoteError("empty file")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise VoteError("not UTF-8 text") from None
        suffix = Path(name).suffix.lower()
        readers = {".csv": _csv_votes, ".json": _label_studio_votes}
        if suffix not in readers:
            raise VoteError(f"unsupported vote file type {suffix!r}: expected .csv or .json")
        for raw in readers[suffix](text):
            try:
                if raw.problem:
                    raise VoteError(raw.problem)
                vote = _validate(raw, known_tasks)
                key = (vote["task_id"], vote["rater_id"])
                if key in seen:
                    raise VoteError(f"rater {key[1]!r} already voted on task {key[0]} at {seen[key]}")
            except VoteError as exc:
                rejected.append(_rejected(name, raw.row, str(exc)))
                continue
            seen[key] = raw.row
            votes.append({**vote, "source_file": name, "row": raw.row})
    except VoteError as exc:
        votes, rejected = [], [_rejected(name, "file", str(exc))]
    return ParsedVotes(pd.DataFrame(votes, columns=VOTE_COLUMNS), pd.DataFrame(rejected, columns=REJECTED_COLUMNS))


def describe(rejected: pd.DataFrame) -> list[str]:
    """Human-readable `file row: reason` lines."""
    return [f"{r.source_file} {r.row}: {r.reason}" for r in rejected.itertuples(index=False)]


@dataclass
class ImportReport:
    source_file: str
    sha256: str
    already_imported: bool
    votes_added: int
    rejected: pd.DataFrame


_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    sha256 TEXT PRIMARY KEY, source_file TEXT NOT NULL, imported_at TEXT NOT NULL,
    votes_added INTEGER NOT NULL, rejected INTEGER NOT NULL{rowid});
CREATE TABLE IF NOT EXISTS votes (
    task_id TEXT NOT NULL, rater_id TEXT NOT NULL, answer TEXT NOT NULL, submitted_at TEXT NOT NULL,
    source_file TEXT NOT NULL, row TEXT NOT NULL, file_sha256 TEXT NOT NULL REFERENCES files(sha256),
    PRIMARY KEY (task_id, rater_id){rowid});
CREATE TABLE IF NOT EXISTS rejections (
    file_sha256 TEXT NOT NULL REFERENCES files(sha256), source_file TEXT NOT NULL, row TEXT NOT NULL,
    reason TEXT NOT NULL{rowid});
"""


def _known_file(con: LedgerConnection, digest: str) -> bool:
    return con.execute("SELECT 1 FROM files WHERE sha256 = ?", (digest,)).fetchone() is not None


class VoteLedger:
    """Append-only store of imported vote files and their votes at `where` (a SQLite file or a PostgreSQL
    database), so per-class runs may import at once."""

    def __init__(self, where: LedgerLocation):
        self.where = where
        with closing(self._connect()) as con:
            con.create_schema(_SCHEMA)

    def _connect(self) -> LedgerConnection:
        return connect(self.where, "votes")

    def import_file(self, name: str, data: bytes, known_tasks: Collection[str]) -> ImportReport:
        """Import one file's votes unless these exact bytes were imported before; all in one transaction."""
        digest = hashlib.sha256(data).hexdigest()
        skipped = ImportReport(name, digest, True, 0, pd.DataFrame(columns=REJECTED_COLUMNS))
        with closing(self._connect()) as con:
            if _known_file(con, digest):
                return skipped
        parsed = parse_vote_file(name, data, known_tasks)
        con = self._connect()
        try:
            con.begin_write()
            if _known_file(con, digest):  # imported by a concurrent run meanwhile
                con.execute("ROLLBACK")
                return skipped
            fresh, repeats = [], []
            for vote in parsed.votes.to_dict(orient="records"):
                earlier = con.execute("SELECT source_file, row FROM votes WHERE task_id = ? AND rater_id = ?",
                                      (vote["task_id"], vote["rater_id"])).fetchone()
                if earlier:
                    repeats.append(_rejected(name, vote["row"], f"rater {vote['rater_id']!r} already voted on task "
                                             f"{vote['task_id']} in {earlier[0]} {earlier[1]}"))
                else:
                    fresh.append(vote)
            rejected = pd.concat([parsed.rejected, pd.DataFrame(repeats, columns=REJECTED_COLUMNS)],
                                 ignore_index=True)
            con.execute("INSERT INTO files (sha256, source_file, imported_at, votes_added, rejected) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (digest, name, datetime.now(UTC).isoformat(), len(fresh), len(rejected)))
            con.executemany(f"INSERT INTO votes ({', '.join(VOTE_COLUMNS)}, file_sha256) VALUES (?, ?, ?, ?, ?, ?, ?)",
                            [(*(v[c] for c in VOTE_COLUMNS), digest) for v in fresh])
            con.executemany(f"INSERT INTO rejections (file_sha256, {', '.join(REJECTED_COLUMNS)}) VALUES (?, ?, ?, ?)",
                            [(digest, r.source_file, r.row, r.reason) for r in rejected.itertuples(index=False)])
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise
        finally:
            con.close()
        return ImportReport(name, digest, False, len(fresh), rejected)

    def _frame(self, sql: str, params: tuple = ()) -> pd.DataFrame:
        with closing(self._connect()) as con:
            return con.frame(sql, params)

    def votes(self, task_ids: Collection[str] | None = None) -> pd.DataFrame:
        """Every vote held (VOTE_COLUMNS), optionally only those on `task_ids`, in import order."""
        columns = ", ".join(VOTE_COLUMNS)
        if task_ids is None:
            return self._frame(f"SELECT {columns} FROM votes ORDER BY rowid")
        with closing(self._connect()) as con:
            among, values = con.any_of("task_id", task_ids)
            return con.frame(f"SELECT {columns} FROM votes WHERE {among} ORDER BY rowid", (values,))

    def rejections(self) -> pd.DataFrame:
        return self._frame(f"SELECT {', '.join(REJECTED_COLUMNS)} FROM rejections ORDER BY rowid")

    def imported_files(self) -> pd.DataFrame:
        return self._frame("SELECT source_file, sha256, imported_at, votes_added, rejected FROM files "
                           "ORDER BY rowid")
