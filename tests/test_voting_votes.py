"""Vote files: row-by-row validation with exact reasons, Label Studio exports, and the idempotent import ledger."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from kinetics_assets.voting.votes import (
    VOTE_COLUMNS,
    VoteLedger,
    describe,
    parse_vote_file,
)

T1, T2, T3 = "a" * 20, "b" * 20, "c" * 20
KNOWN = {T1, T2, T3}
HEADER = "task_id,rater_id,answer,submitted_at\n"


def csv_file(*rows: str) -> bytes:
    return (HEADER + "".join(row + "\n" for row in rows)).encode()


def reasons(name: str, data: bytes) -> list[tuple[str, str]]:
    rejected = parse_vote_file(name, data, KNOWN).rejected
    return list(zip(rejected["row"], rejected["reason"]))


def ls_export(*annotations: dict, task_id: str = T1) -> bytes:
    return json.dumps([{"id": 7, "data": {"video": "/clips/x.mp4", "task_id": task_id},
                        "annotations": list(annotations), "predictions": []}]).encode()


def annotation(choice: str = "yes", user: object = 3, created: str = "2021-03-09T22:16:08.728353Z",
               **extra) -> dict:
    return {"id": 1, "completed_by": user, "created_at": created, "was_cancelled": False, **extra,
            "result": [{"from_name": "answer", "to_name": "video", "type": "choices",
                        "value": {"choices": [choice]}}]}


def test_valid_csv_votes_are_read_and_normalised():
    parsed = parse_vote_file("stacking_dice/b1.csv", csv_file(
        f"{T1},r1,yes,2020-06-01T10:00:00Z",
        f"{T1},r2, No ,2020-06-01T12:00:00+02:00",
        f"{T2},r1,unsure,2020-06-01T10:00:00.5+00:00",
    ), KNOWN)
    assert parsed.rejected.empty
    assert list(parsed.votes.columns) == VOTE_COLUMNS
    assert parsed.votes["answer"].tolist() == ["yes", "no", "unsure"]
    assert parsed.votes["submitted_at"].tolist() == [
        "2020-06-01T10:00:00+00:00", "2020-06-01T10:00:00+00:00", "2020-06-01T10:00:00.500000+00:00"]
    assert parsed.votes["row"].tolist() == ["line 2", "line 3", "line 4"]


def test_each_bad_row_is_rejected_with_its_reason_and_the_rest_kept():
    data = csv_file(
        f"{T1},r1,yes,2020-06-01T10:00:00Z",
        "zzz,r1,yes,2020-06-01T10:00:00Z",
        f"{T2},r1,maybe,2020-06-01T10:00:00Z",
        f"{T1},r1,no,2020-06-01T11:00:00Z",
        f"{T2},r2,yes,yesterday",
        f"{T2},r3,yes,2020-06-01 10:00:00",
        f"{T3},,yes,2020-06-01T10:00:00Z",
        f"{T3},r4,yes",
    )
    parsed = parse_vote_file("f.csv", data, KNOWN)
    assert parsed.votes[["task_id", "rater_id"]].values.tolist() == [[T1, "r1"]]
    assert list(zip(parsed.rejected["row"], parsed.rejected["reason"])) == [
        ("line 3", "unknown task 'zzz'"),
        ("line 4", "unknown answer 'maybe': must be one of yes, no, unsure"),
        ("line 5", f"rater 'r1' already voted on task {T1} at line 2"),
        ("line 6", "malformed timestamp 'yesterday': not ISO-8601"),
        ("line 7", "malformed timestamp '2020-06-01 10:00:00': no timezone"),
        ("line 8", "invalid rater_id '': must be 1-128 printable characters"),
        ("line 9", "3 fields, the header has 4"),
    ]
    assert describe(parsed.rejected)[0] == "f.csv line 3: unknown task 'zzz'"


@pytest.mark.parametrize("name, data, reason", [
    ("f.csv", b"", "empty file"),
    ("f.csv", b"  \n\n", "empty file"),
    ("f.csv", b"task_id,rater,answer\nx,y,z\n",
     "missing columns: rater_id, submitted_at (header: task_id, rater, answer)"),
    ("f.csv", b"\xff\xfe\x00bad", "not UTF-8 text"),
    ("f.txt", csv_file(f"{T1},r1,yes,2020-06-01T10:00:00Z"), "unsupported vote file type '.txt': expected .csv or .json"),
    ("f.json", b"{\"data\": {}}", "not a Label Studio export: expected a JSON list of tasks"),
])
def test_file_level_problems_reject_the_whole_file(name, data, reason):
    parsed = parse_vote_file(name, data, KNOWN)
    assert parsed.votes.empty
    assert reasons(name, data) == [("file", reason)]


def test_label_studio_export_is_read():
    data = ls_export(annotation("yes", 3), annotation("unsure", {"id": 4, "email": "ann@example.org"}))
    parsed = parse_vote_file("stacking_dice/ls.json", data, KNOWN)
    assert parsed.rejected.empty
    assert parsed.votes[["task_id", "rater_id", "answer"]].values.tolist() == [
        [T1, "3", "yes"], [T1, "ann@example.org", "unsure"]]
    assert parsed.votes["submitted_at"].tolist()[0] == "2021-03-09T22:16:08.728353+00:00"
    assert parsed.votes["row"].tolist() == ["[0].annotations[0]", "[0].annotations[1]"]


def test_label_studio_bad_annotations_are_rejected_with_reasons():
    data = ls_export(annotation("maybe", 1), annotation("yes", 2, was_cancelled=True), annotation("yes", 3),
                     annotation("no", 3), {"completed_by": 5, "created_at": "2021-03-09T22:16:08Z", "result": []})
    assert reasons("ls.json", data) == [
        ("[0].annotations[0]", "unknown answer 'maybe': must be one of yes, no, unsure"),
        ("[0].annotations[1]", "cancelled annotation: the rater skipped the task"),
        ("[0].annotations[3]", f"rater '3' already voted on task {T1} at [0].annotations[2]"),
        ("[0].annotations[4]", "expected one choices result, found 0"),
    ]
    assert reasons("ls.json", ls_export(annotation(), task_id="nope")) == [
        ("[0].annotations[0]", "unknown task 'nope'")]
    assert reasons("ls.json", b"[{\"data\": {\"task_id\": 1}") [0][1].startswith("not valid JSON")


def test_importing_the_same_file_twice_adds_nothing(ledger_backend):
    where = ledger_backend.location()
    ledger = VoteLedger(where)
    data = csv_file(f"{T1},r1,yes,2020-06-01T10:00:00Z", f"{T2},r1,no,2020-06-01T10:00:00Z")
    first = ledger.import_file("c/one.csv", data, KNOWN)
    second = ledger.import_file("c/one-copy.csv", data, KNOWN)
    assert (first.votes_added, first.already_imported) == (2, False)
    assert (second.votes_added, second.already_imported) == (0, True)
    reopened = VoteLedger(where)
    assert len(reopened.votes()) == 2 and len(reopened.imported_files()) == 1
    assert reopened.import_file("c/one.csv", data, KNOWN).already_imported


def test_a_changed_file_is_a_new_file(ledger_backend):
    ledger = VoteLedger(ledger_backend.location())
    ledger.import_file("c/batch.csv", csv_file(f"{T1},r1,yes,2020-06-01T10:00:00Z"), KNOWN)
    changed = csv_file(f"{T1},r1,yes,2020-06-01T10:00:00Z", f"{T1},r2,no,2020-06-01T10:00:00Z")
    report = ledger.import_file("c/batch.csv", changed, KNOWN)
    assert not report.already_imported and report.votes_added == 1
    assert describe(report.rejected) == [
        f"c/batch.csv line 2: rater 'r1' already voted on task {T1} in c/batch.csv line 2"]
    assert sorted(ledger.votes()["rater_id"]) == ["r1", "r2"]
    assert len(ledger.rejections()) == 1 and len(ledger.imported_files()) == 2


def test_ledger_keeps_file_rejections_and_filters_votes_by_task(ledger_backend):
    ledger = VoteLedger(ledger_backend.location())
    ledger.import_file("c/a.csv", csv_file(f"{T1},r1,yes,2020-06-01T10:00:00Z", f"{T2},r1,no,2020-06-01T10:00:00Z",
                                           f"{T3},r1,maybe,2020-06-01T10:00:00Z"), KNOWN)
    empty = ledger.import_file("c/empty.csv", b"", KNOWN)
    assert describe(empty.rejected) == ["c/empty.csv file: empty file"]
    assert ledger.votes([T2])["task_id"].tolist() == [T2]
    assert ledger.votes([])["task_id"].tolist() == []
    assert ledger.rejections()["reason"].tolist() == ["unknown answer 'maybe': must be one of yes, no, unsure",
                                                      "empty file"]


def test_concurrent_imports_of_one_file_add_it_once(ledger_backend):
    rows = [f"{task},r{k},yes,2020-06-01T10:00:00Z" for task in KNOWN for k in range(200)]
    data = csv_file(*rows)
    where = ledger_backend.location()
    with ThreadPoolExecutor(4) as pool:
        reports = list(pool.map(lambda _: VoteLedger(where).import_file("c/a.csv", data, KNOWN), range(4)))
    assert sorted(r.already_imported for r in reports) == [False, True, True, True]
    assert len(VoteLedger(where).votes()) == 600


def test_a_field_over_the_csv_limit_is_one_rejected_row_and_the_rest_is_imported(tmp_path):
    data = csv_file(f"{T1},r1,yes,2020-06-01T10:00:00Z", f"{T2},{'x' * 200_000},yes,2020-06-01T10:00:00Z",
                    f"{T3},r1,no,2020-06-01T10:00:00Z")
    report = VoteLedger(tmp_path / "ledger.sqlite").import_file("c/long.csv", data, KNOWN)
    assert report.votes_added == 2
    assert describe(report.rejected) == [
        "c/long.csv line 3: unreadable CSV row: field larger than field limit (131072)"]


def test_a_vote_dated_in_the_future_is_rejected_within_a_small_clock_skew():
    soon = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    parsed = parse_vote_file("f.csv", csv_file(
        f"{T1},r1,yes,{soon}", f"{T1},r2,yes,9999-12-31T23:59:59Z", f"{T1},r3,yes,9999-12-31T23:59:59-01:00",
        f"{T2},r1,yes,{tomorrow}"), KNOWN)
    assert parsed.votes["rater_id"].tolist() == ["r1"]
    assert list(zip(parsed.rejected["row"], parsed.rejected["reason"])) == [
        ("line 3", "timestamp '9999-12-31T23:59:59Z' is in the future (more than 0:10:00 ahead of this clock)"),
        ("line 4", "timestamp '9999-12-31T23:59:59-01:00' is out of range"),
        ("line 5", f"timestamp {tomorrow!r} is in the future (more than 0:10:00 ahead of this clock)"),
    ]
    future = ls_export(annotation(created="9999-01-01T00:00:00Z"))
    assert reasons("ls.json", future)[0][1].startswith("timestamp '9999-01-01T00:00:00Z' is in the future")


def test_a_column_named_twice_rejects_the_file():
    data = b"task_id,rater_id,answer,answer,submitted_at\n" + f"{T1},r1,yes,no,2020-06-01T10:00:00Z\n".encode()
    assert reasons("f.csv", data) == [("file", "column 'answer' appears more than once in the header")]
