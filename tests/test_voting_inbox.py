"""The inbox scan behind the votes sensor: classes with new files only, never the same file version twice."""

from __future__ import annotations

import os

import pytest

from kinetics_assets.partitions import class_key
from kinetics_assets.voting.inbox import InboxFile, class_vote_files, decode_cursor, scan_inbox
from kinetics_assets.voting.votes import VoteLedger
from resources.crowd import CrowdInbox

DICE, BOXING = class_key("stacking dice"), class_key("punching person (boxing)")


def keys(scan) -> list[str]:
    return [batch.class_key for batch in scan.batches]


def test_new_files_request_their_classes_once():
    files = [InboxFile(f"{DICE}/a.csv", "1"), InboxFile(f"{DICE}/b.json", "1"), InboxFile(f"{BOXING}/a.csv", "1")]
    first = scan_inbox(files, None)
    assert keys(first) == sorted([DICE, BOXING])
    assert [f.path for f in first.batches[keys(first).index(DICE)].files] == [f"{DICE}/a.csv", f"{DICE}/b.json"]
    again = scan_inbox(files, first.cursor)
    assert again.batches == () and decode_cursor(again.cursor) == decode_cursor(first.cursor)


def test_only_classes_with_new_files_are_requested():
    old = [InboxFile(f"{DICE}/a.csv", "1"), InboxFile(f"{BOXING}/a.csv", "1")]
    cursor = scan_inbox(old, None).cursor
    scan = scan_inbox([*old, InboxFile(f"{BOXING}/b.csv", "1")], cursor)
    assert keys(scan) == [BOXING]
    assert [f.path for f in scan.batches[0].files] == [f"{BOXING}/b.csv"]


def test_a_rewritten_file_is_new_and_gets_a_new_run_key():
    first = scan_inbox([InboxFile(f"{DICE}/a.csv", "1")], None)
    rewritten = scan_inbox([InboxFile(f"{DICE}/a.csv", "2")], first.cursor)
    assert keys(rewritten) == [DICE]
    assert rewritten.batches[0].run_key != first.batches[0].run_key
    assert rewritten.batches[0].run_key.startswith(f"votes-{DICE}-")
    assert scan_inbox([InboxFile(f"{DICE}/a.csv", "1")], None).batches[0].run_key == first.batches[0].run_key


def test_files_being_written_wait_until_renamed():
    partial = InboxFile(f"{DICE}/.a.csv.x.partial", "1")
    scan = scan_inbox([partial], None)
    assert scan.batches == () and scan.skipped == () and decode_cursor(scan.cursor) == {}


def test_files_off_the_layout_are_skipped_once_with_a_reason():
    files = [InboxFile("loose.csv", "1"), InboxFile(f"{DICE}/notes.txt", "1"),
             InboxFile("no such|class/a.csv", "1"), InboxFile(f"{class_key('luge')}/a.csv", "1"),
             InboxFile(f"{DICE}/deeper/a.csv", "1")]
    scan = scan_inbox(files, None, class_keys={DICE})
    assert scan.batches == ()
    assert dict(scan.skipped) == {
        "loose.csv": "expected {class_key}/{file name}",
        f"{DICE}/notes.txt": "not a vote file (expected .csv or .json)",
        "no such|class/a.csv": "'no such|class' is not a class partition key",
        "luge/a.csv": "'luge' is not one of the pipeline's classes",
        f"{DICE}/deeper/a.csv": "expected {class_key}/{file name}",
    }
    assert scan_inbox(files, scan.cursor, class_keys={DICE}).skipped == ()


def test_a_corrupt_cursor_is_an_error():
    with pytest.raises(ValueError, match="not JSON"):
        scan_inbox([], "{nope")
    with pytest.raises(ValueError, match="map file paths"):
        scan_inbox([], "[1, 2]")


def test_crowd_inbox_folder_versions_change_with_content(tmp_path):
    inbox = CrowdInbox(root=str(tmp_path))
    inbox.write_votes(f"{DICE}/a.csv", b"task_id,rater_id,answer,submitted_at\n")
    first = scan_inbox(inbox.vote_files(), None)
    assert keys(first) == [DICE] and inbox.read_votes(f"{DICE}/a.csv").startswith(b"task_id")
    assert scan_inbox(inbox.vote_files(), first.cursor).batches == ()
    path = tmp_path / "votes" / DICE / "a.csv"
    inbox.write_votes(f"{DICE}/a.csv", b"task_id,rater_id,answer,submitted_at\nx,y,yes,z\n")
    os.utime(path, ns=(1, 1))  # even an mtime moved backwards: the size changed
    assert keys(scan_inbox(inbox.vote_files(), first.cursor)) == [DICE]


def test_crowd_inbox_checks_paths_and_keeps_tasks_apart(tmp_path):
    inbox = CrowdInbox(root=str(tmp_path))
    for bad in ("../x.csv", "/abs/x.csv", f"{DICE}/.hidden.csv", "x.csv", f"{DICE}/a/b.csv"):
        with pytest.raises(ValueError, match="must be"):
            inbox.write_votes(bad, b"")
    inbox.publish_tasks(f"{DICE}/tasks-1.csv", b"task_id\n")
    assert inbox.task_files(DICE) == [f"{DICE}/tasks-1.csv"] and inbox.task_files(BOXING) == []
    assert inbox.read_tasks(f"{DICE}/tasks-1.csv") == b"task_id\n"
    assert inbox.vote_files() == []
    with pytest.raises(ValueError, match="safe folder name"):
        inbox.task_files("..")


def test_a_name_the_crowd_inbox_cannot_read_is_skipped_by_the_sensor():
    scan = scan_inbox([InboxFile(f"{DICE}/my votes.csv", "1"), InboxFile(f"{DICE}/ok.csv", "1")], None)
    assert [f.path for batch in scan.batches for f in batch.files] == [f"{DICE}/ok.csv"]
    assert scan.skipped == ((f"{DICE}/my votes.csv",
                             "file name 'my votes.csv' is not of [A-Za-z0-9_%.-] (not starting with '.')"),)


def test_one_class_imports_its_good_files_and_skips_odd_names_with_a_reason(tmp_path):
    """What rater_votes imports: one odd file name must not fail the class's other files."""
    inbox = CrowdInbox(root=str(tmp_path))
    header = "task_id,rater_id,answer,submitted_at\n"
    inbox.write_votes(f"{DICE}/a.csv", f"{header}{'t' * 20},r1,yes,2020-06-01T10:00:00Z\n".encode())
    inbox.write_votes(f"{BOXING}/b.csv", header.encode())
    folder = tmp_path / "votes" / DICE
    (folder / "deeper").mkdir()
    for odd in ("my votes.csv", ".still-writing.csv", "deeper/c.csv"):
        (folder / odd).write_text(header)
    entries, skipped = class_vote_files(inbox.vote_files(), DICE)
    assert [entry.path for entry in entries] == [f"{DICE}/a.csv"]
    assert dict(skipped) == {
        f"{DICE}/.still-writing.csv": "hidden name (a file still being written): imported once renamed",
        f"{DICE}/deeper/c.csv": "expected {class_key}/{file name}",
        f"{DICE}/my votes.csv": "file name 'my votes.csv' is not of [A-Za-z0-9_%.-] (not starting with '.')",
    }
    ledger = VoteLedger(tmp_path / "ledger.sqlite")
    reports = [ledger.import_file(e.path, inbox.read_votes(e.path), {"t" * 20}) for e in entries]
    assert [report.votes_added for report in reports] == [1]
