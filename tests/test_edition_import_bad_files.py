"""The edition_annotations asset on files that are not annotation text: a UTF-16 file is one rejection naming
the file (the other files are imported), a FIFO fails the asset at once naming it (never a reader blocked)."""

import os

import dagster as dg
import pandas as pd
import pytest

from kinetics_assets.definitions import STAGES
from resources.editions import EditionCatalog, EditionFiles
from resources.profiles import resources_for

GOOD = "label,youtube_id,time_start,time_end,split\nabseiling,0wR5jVB-WPk,0,10,train\n"


def _materialize(files):
    edition = EditionFiles(name="K700", taxonomy="Kinetics-700", files=[str(f) for f in files])
    catalog = EditionCatalog(editions=[edition], current="K700")
    return dg.materialize(dg.load_assets_from_modules(STAGES), selection=["edition_annotations"],
                          resources={**resources_for(), "editions": catalog}, instance=dg.DagsterInstance.ephemeral(),
                          raise_on_error=False)


def test_a_utf16_file_is_one_rejection_and_the_other_files_are_imported(tmp_path, kinetics_home):
    good, utf16 = tmp_path / "train.csv", tmp_path / "validate.csv"
    good.write_text(GOOD)
    utf16.write_text(GOOD, encoding="utf-16")
    result = _materialize([good, utf16])
    assert result.success
    assert len(result.output_for_node("edition_annotations")) == 1
    rejected = pd.read_csv(kinetics_home / "artifacts" / "editions" / "K700" / "rejected_rows.csv")
    assert rejected[["source_file", "line", "reason"]].values.tolist() == [
        [str(utf16), 0, "UTF-16 text (byte-order mark ff fe), not UTF-8: save it as UTF-8"]]


@pytest.mark.timeout(60)
def test_a_fifo_fails_the_import_at_once_naming_it(tmp_path, kinetics_home):
    fifo = tmp_path / "train.csv"
    os.mkfifo(fifo)
    result = _materialize([fifo])
    assert not result.success
    [failure] = [event for event in result.all_events if event.is_step_failure]
    assert f"annotation file of edition 'K700' is not a regular file: {fifo}" in str(failure.step_failure_data.error)
