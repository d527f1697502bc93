"""The annotation importer: every malformed row is rejected with its file, line and exact reason; nothing is lost."""

from pathlib import Path

import os

import numpy as np
import pytest

from kinetics_assets.editions import annotations
from kinetics_assets.editions.annotations import import_annotations, read_annotation_file

HEADER = "label,youtube_id,time_start,time_end,split,is_cc\n"
GOOD = "abseiling,0wR5jVB-WPk,417,427,val,0\n"


def write(tmp_path: Path, text: str | bytes, name: str = "ann.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def only_rejection(result):
    assert len(result.rejected) == 1, result.rejected.to_dict("records")
    return result.rejected.iloc[0]


@pytest.mark.parametrize(
    "row, reason",
    [
        ("abseiling,0wR5jVB-WPk,417,val,0", "expected 6 fields (label,youtube_id,time_start,time_end,split,is_cc), got 5"),
        ("abseiling,0wR5jVB-WPk,417,427,val,0,extra", "expected 6 fields (label,youtube_id,time_start,time_end,split,is_cc), got 7"),
        ('abseiling,"0wR5jVB-WPk,417,427,val,0', "malformed CSV quoting: unbalanced quotes"),
        ("abseiling,0wR5jVB-WP,417,427,val,0", "invalid youtube_id '0wR5jVB-WP': must be 11 characters of [A-Za-z0-9_-]"),
        ("abseiling,0wR5jVB-WPk1,417,427,val,0", "invalid youtube_id '0wR5jVB-WPk1': must be 11 characters of [A-Za-z0-9_-]"),
        ("abseiling,0wR5jVB+WPk,417,427,val,0", "invalid youtube_id '0wR5jVB+WPk': must be 11 characters of [A-Za-z0-9_-]"),
        ("abseiling,../../etc/pass,417,427,val,0", "invalid youtube_id '../../etc/pass': must be 11 characters of [A-Za-z0-9_-]"),
        ("abseiling,../../etc/p,417,427,val,0", "invalid youtube_id '../../etc/p': must be 11 characters of [A-Za-z0-9_-]"),
        ("abseiling,0wR5jVB-WPk,-5,5,val,0", "time_start -5 is negative"),
        ("abseiling,0wR5jVB-WPk,427,417,val,0", "time_start 427 is not before time_end 417"),
        ("abseiling,0wR5jVB-WPk,417,417,val,0", "time_start 417 is not before time_end 417"),
        ("abseiling,0wR5jVB-WPk,abc,427,val,0", "time_start 'abc' is not a number (ASCII decimal digits only)"),
        ("abseiling,0wR5jVB-WPk,417,nan,val,0", "time_end 'nan' is not a number (ASCII decimal digits only)"),
        ("abseiling,0wR5jVB-WPk,417," + "9" * 400 + ",val,0", f"time_end '{'9' * 400}' is not a finite number"),
        ("abseiling,0wR5jVB-WPk,400,412,val,0", "clip lasts 12 s; time_end - time_start must be <= 10"),
        ("not a class,0wR5jVB-WPk,417,427,val,0", "label 'not a class' is not a class of Kinetics-400"),
        ("Abseiling,0wR5jVB-WPk,417,427,val,0", "label 'Abseiling' is not a class of Kinetics-400"),
        ("abseiling,0wR5jVB-WPk,417,427,dev,0", "split 'dev' is not one of train, val, validate, test"),
        ("abseiling,0wR5jVB-WPk,417,427,val,2", "is_cc '2' is not 0 or 1"),
        # float() reads all of these as numbers; only ASCII decimals are times.
        ("abseiling,0wR5jVB-WPk,４１７,427,val,0", "time_start '４１７' is not a number (ASCII decimal digits only)"),
        ("abseiling,0wR5jVB-WPk,٤١٧,427,val,0", "time_start '٤١٧' is not a number (ASCII decimal digits only)"),
        ("abseiling,0wR5jVB-WPk,417,4_27,val,0", "time_end '4_27' is not a number (ASCII decimal digits only)"),
        ("abseiling,0wR5jVB-WPk,417,4.27e2,val,0", "time_end '4.27e2' is not a number (ASCII decimal digits only)"),
        ("abseiling,0wR5jVB-WPk,417,427" + "x" * 200_000 + ",val,0",
         "line longer than 131072 bytes (the csv module's field limit)"),
    ],
)
def test_malformed_row_is_rejected_with_its_reason_and_line(tmp_path, row, reason):
    path = write(tmp_path, HEADER + GOOD + row + "\n")
    result = read_annotation_file(path, "Kinetics-400")
    rejection = only_rejection(result)
    assert rejection.reason == reason
    assert rejection.line == 3
    assert rejection.source_file == str(path)
    assert rejection.raw == (row if len(row) < 131_072 else "(not kept: over-long line)")
    assert list(result.rows["youtube_id"]) == ["0wR5jVB-WPk"]  # the good row survives


def test_utf8_bom_is_stripped_and_noted(tmp_path):
    result = read_annotation_file(write(tmp_path, b"\xef\xbb\xbf" + (HEADER + GOOD).encode()), "Kinetics-400")
    assert result.rejected.empty and len(result.rows) == 1
    assert result.notes == [f"{tmp_path / 'ann.csv'}: UTF-8 byte-order mark stripped"]


def test_crlf_line_endings_are_read_and_noted(tmp_path):
    result = read_annotation_file(write(tmp_path, (HEADER + GOOD).replace("\n", "\r\n")), "Kinetics-400")
    assert result.rejected.empty
    assert result.rows.iloc[0]["is_cc"] == 0 and result.rows.iloc[0]["split"] == "val"
    assert result.notes == [f"{tmp_path / 'ann.csv'}: CRLF line endings read as LF"]


def test_properly_quoted_fields_are_accepted(tmp_path):
    result = read_annotation_file(write(tmp_path, HEADER + '"abseiling","0wR5jVB-WPk","417","427","val","0"\n'), "Kinetics-400")
    assert result.rejected.empty
    assert result.rows.iloc[0]["label"] == "abseiling"


def test_empty_file_is_one_rejection(tmp_path):
    result = read_annotation_file(write(tmp_path, ""), "Kinetics-400")
    assert only_rejection(result).reason == "empty file: no header and no rows"
    assert result.rows.empty


def test_header_only_file_is_reported(tmp_path):
    result = read_annotation_file(write(tmp_path, HEADER), "Kinetics-400")
    rejection = only_rejection(result)
    assert (rejection.line, rejection.reason) == (1, "header only: no data rows")


def test_unofficial_header_rejects_every_row_with_a_reason(tmp_path):
    result = read_annotation_file(write(tmp_path, "label,id,start,end,split\n" + GOOD + GOOD), "Kinetics-400")
    assert result.rejected.iloc[0].reason.startswith("unreadable header on line 1: header 'label,id,start,end,split'")
    assert list(result.rejected["line"]) == [1, 2, 3]
    assert set(result.rejected["reason"][1:]) == {"skipped: the file's header is not official"}


def test_exact_duplicate_rows_are_collapsed_and_counted(tmp_path):
    result = read_annotation_file(write(tmp_path, HEADER + GOOD + GOOD + GOOD), "Kinetics-400")
    assert len(result.rows) == 1
    assert result.duplicates_collapsed == 2
    assert result.rejected.empty


def test_duplicates_across_files_are_collapsed(tmp_path):
    first, second = write(tmp_path, HEADER + GOOD, "a.csv"), write(tmp_path, HEADER + GOOD, "b.csv")
    result = import_annotations([first, second], "Kinetics-400")
    assert (len(result.rows), result.duplicates_collapsed) == (1, 1)


def test_test_file_without_labels_is_accepted(tmp_path):
    path = write(tmp_path, "youtube_id,time_start,time_end,split\n0wR5jVB-WPk,417,427,test\n")
    result = read_annotation_file(path, "Kinetics-700")
    assert result.rejected.empty
    row = result.rows.iloc[0]
    assert row["label"] is None and row["split"] == "test"


def test_unlabelled_train_row_is_rejected(tmp_path):
    path = write(tmp_path, "youtube_id,time_start,time_end,split\n0wR5jVB-WPk,417,427,train\n")
    reason = only_rejection(read_annotation_file(path, "Kinetics-700")).reason
    assert reason == "row in split 'train' has no label; only test files may omit labels"


def test_validate_is_read_as_val_and_floats_are_times(tmp_path):
    result = read_annotation_file(write(tmp_path, HEADER + "abseiling,0wR5jVB-WPk,1.5,11.5,validate,1\n"), "Kinetics-700")
    row = result.rows.iloc[0]
    assert (row["split"], row["time_start"], row["time_end"], row["is_cc"]) == ("val", 1.5, 11.5, 1)


def test_non_utf8_file_is_rejected_not_crashed(tmp_path):
    result = read_annotation_file(write(tmp_path, HEADER.encode() + b"abseiling,\xff\xfe,1,2,val,0\n"), "Kinetics-400")
    assert only_rejection(result).reason.startswith("not UTF-8 text")


def test_a_line_that_is_not_utf8_spoils_only_itself(tmp_path):
    latin1 = "abseiling,0wR5jVB-WPk,1,11,train,0 # café\n".encode("latin-1")
    later = GOOD.replace("417,427", "1,11").encode()
    result = read_annotation_file(write(tmp_path, HEADER.encode() + GOOD.encode() + latin1 + later), "Kinetics-400")
    rejection = only_rejection(result)
    assert (rejection.line, rejection.reason) == (3, "not UTF-8 text (byte 40 of the line)")
    assert list(result.rows["line"]) == [2, 4]


@pytest.mark.parametrize("data, reason", [
    ((HEADER + GOOD).encode("utf-16"), "UTF-16 text (byte-order mark ff fe), not UTF-8: save it as UTF-8"),
    ((HEADER + GOOD).encode("utf-16-be"), "not text: NUL byte at offset 0 (binary data, or UTF-16/32 without a "
                                          "byte-order mark)"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not text: NUL byte at offset 8 (binary data, or UTF-16/32 without "
                                            "a byte-order mark)"),
    (b"lab\xe9l,youtube_id\n" + GOOD.encode(), "header on line 1 is unreadable: not UTF-8 text (byte 3 of the line)"),
])
def test_a_file_that_is_not_utf8_text_is_refused_whole(tmp_path, data, reason):
    path = write(tmp_path, data)
    result = import_annotations([path, write(tmp_path, HEADER + GOOD, "good.csv")], "Kinetics-400")
    assert result.refused[["source_file", "line", "reason"]].values.tolist() == [[str(path), 0, reason]]
    assert len(result.rejected) == 1 and list(result.rows["source_file"]) == [str(tmp_path / "good.csv")]


@pytest.mark.timeout(10)
def test_a_fifo_or_device_is_refused_without_being_opened(tmp_path):
    fifo = tmp_path / "ann.csv"
    os.mkfifo(fifo)  # opening it for reading would block until a writer appears
    result = import_annotations([fifo, "/dev/zero"], "Kinetics-400")
    assert result.refused[["line", "reason"]].values.tolist() == [
        [0, "not a regular file (a FIFO); give an annotation CSV"],
        [0, "not a regular file (a character device); give an annotation CSV"],
    ]
    with pytest.raises(annotations.AnnotationFileError, match="ann.csv: not a regular file"):
        annotations.guess_edition([fifo])


def test_a_column_named_twice_rejects_the_file(tmp_path):
    result = read_annotation_file(write(tmp_path, HEADER.strip() + ",is_cc\n" + GOOD.strip() + ",1\n"), "Kinetics-400")
    assert result.rows.empty
    assert result.rejected[["line", "reason"]].values.tolist() == [
        [1, "unreadable header on line 1: column 'is_cc' appears more than once in the header"],
        [2, "skipped: the file's header is not official"],
    ]


def test_a_hash_collision_never_merges_two_different_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(annotations, "_key_hashes", lambda keys: np.zeros(len(keys), dtype=np.uint64))
    other = GOOD.replace("417,427", "418,428")
    result = read_annotation_file(write(tmp_path, HEADER + GOOD + other + GOOD + other + GOOD), "Kinetics-400")
    assert list(result.rows["line"]) == [2, 3] and result.duplicates_collapsed == 3


def test_rows_held_across_chunks_keep_their_values(tmp_path, monkeypatch):
    monkeypatch.setattr(annotations, "CHUNK_ROWS", 2)
    lines = [f"abseiling,0wR5jVB-WP{c},{n},{n + 10},train,{n % 2}\n" for n, c in enumerate("abcde")]
    result = read_annotation_file(write(tmp_path, HEADER + "".join(lines) + lines[1] + lines[4]), "Kinetics-400")
    assert result.rows["youtube_id"].tolist() == [f"0wR5jVB-WP{c}" for c in "abcde"]
    assert result.rows[["time_start", "is_cc", "line"]].values.tolist() == [[n, n % 2, n + 2] for n in range(5)]
    assert result.duplicates_collapsed == 2


def test_every_data_line_is_accounted_for(tmp_path):
    rows = [GOOD, GOOD, "abseiling,bad,1,2,val,0\n", "abseiling,0wR5jVB-WPk,1,2,dev,0\n", "\n"]
    result = read_annotation_file(write(tmp_path, HEADER + "".join(rows)), "Kinetics-400")
    assert len(result.rows) + len(result.rejected) + result.duplicates_collapsed == 4
