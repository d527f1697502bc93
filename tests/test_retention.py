"""Table 2 for our editions: per edition and split, original vs still-available clips and %, over time (one row
per availability check, reruns add none), beside the note's Table 2 rows, labelled as the note's."""

import datetime

import dagster as dg
import pandas as pd
import pytest

from kinetics_assets.editions.history import Answer
from kinetics_assets.release.assets import RELEASES, release_stem, retention_table
from kinetics_assets.release.retention import OURS, PAPER, over_time, paper_table2, retention
from kinetics_assets.release.writer import Parent, publish_release
from resources.editions import EditionCatalog, EditionFiles
from resources.ledgers import Ledgers
from resources.storage import LocalArtifactStore, LocalParquetIOManager

EDITION = "sandbox-previous"


def clips(edition: str, videos_by_split: dict[str, list[str]]) -> pd.DataFrame:
    return pd.DataFrame([{"edition": edition, "split": split, "youtube_id": video}
                         for split, videos in videos_by_split.items() for video in videos])


def test_retention_counts_gone_and_undetermined_clips_per_edition_and_split():
    published = clips(EDITION, {"test": ["t1"], "train": ["a1", "a2", "a3", "a4"], "val": ["v1", "v2"]})
    statuses = pd.Series({"a1": "gone", "a2": "available", "a3": "unknown", "v1": "available", "v2": "gone",
                          "t1": "available"})
    rows = retention(published, statuses, "2026-12-01T08:00:00+00:00").set_index("split")
    assert list(rows.index) == ["train", "val", "test"]
    assert rows.loc["train", ["clips_original", "clips_available", "clips_gone", "clips_undetermined"]].tolist() == [
        4, 3, 1, 2]  # a3 answered unknown and a4 was never checked: not lost, but undetermined
    assert rows.loc["train", "percent_retained"] == 75.0 and rows.loc["val", "percent_retained"] == 50.0
    assert set(rows["source"]) == {OURS}


def test_retention_refuses_clips_without_the_columns_it_counts():
    with pytest.raises(ValueError, match=r"retention needs clip columns \['edition'\]"):
        retention(pd.DataFrame({"split": ["train"], "youtube_id": ["a1"]}), pd.Series(dtype=object), "now")


def test_over_time_appends_a_new_check_and_replaces_a_rerun_of_the_same_one():
    published = clips(EDITION, {"train": ["a1", "a2"]})
    first = retention(published, pd.Series({"a1": "available", "a2": "available"}), "2026-01-01T00:00:00+00:00")
    later = retention(published, pd.Series({"a1": "gone", "a2": "available"}), "2027-01-01T00:00:00+00:00")
    history = over_time(over_time(None, first), later)
    assert history["percent_retained"].tolist() == [100.0, 50.0]
    assert over_time(history, later).equals(history), "a rerun on the same evidence adds no row"


def test_the_notes_table2_rows_are_labelled_as_the_notes():
    paper = paper_table2().set_index(["edition", "split"])
    assert set(paper["source"]) == {PAPER} and set(paper["as_of"]) == {"2020-10-14"}
    assert paper.loc[("Kinetics-700", "val"), ["clips_original", "clips_available", "percent_retained"]].tolist() == [
        35000, 34056, 97.0]
    assert pd.isna(paper.loc[("Kinetics-700-2020", "train"), "clips_available"])


def _edition_rows() -> pd.DataFrame:
    rows = [{"label": "luge", "youtube_id": f"luge{k:07d}", "time_start": 0.0, "time_end": 10.0,
             "split": "train" if k < 3 else "val", "edition": EDITION, "taxonomy": "Kinetics-700"} for k in range(4)]
    return pd.DataFrame(rows)


def test_retention_table_asset_reads_releases_history_and_adds_a_row_per_check(tmp_path):
    """The asset through Dagster: the edition and its release, statuses from the edition's check overridden by
    the availability history, one row set per availability materialization, and Table 2 beside."""
    io_manager = LocalParquetIOManager(base_dir=str(tmp_path / "assets"))
    artifacts = LocalArtifactStore(root=str(tmp_path / "artifacts"))
    ledgers = Ledgers(root=str(tmp_path / "ledgers"))
    catalog = EditionCatalog(editions=[EditionFiles(name=EDITION, taxonomy="Kinetics-700", files=[])], current=EDITION)
    rows = _edition_rows()
    release = publish_release(rows.drop(columns=["edition", "taxonomy"]), artifacts.path(RELEASES),
                              stem=release_stem(catalog), classes=("luge",),
                              source=Parent(EDITION, rows), gone_among=lambda videos: set())
    instance = dg.DagsterInstance.ephemeral()

    statuses = {"now": ["available"] * 4}
    upstream = [dg.asset(name="edition_annotations")(lambda: rows),
                dg.asset(name="edition_availability")(
                    lambda: pd.DataFrame({"youtube_id": rows["youtube_id"], "status": statuses["now"]})),
                dg.asset(name="edition_release")(lambda: rows)]  # stands for the release written above
    resources = {"io_manager": io_manager, "artifacts": artifacts, "ledgers": ledgers, "editions": catalog}

    def check_availability(found: list[str]) -> None:
        statuses["now"] = found
        assert dg.materialize([*upstream, retention_table], resources=resources, instance=instance,
                              selection=["edition_annotations", "edition_availability"]).success

    def materialize() -> pd.DataFrame:
        result = dg.materialize([*upstream, retention_table], resources=resources, instance=instance,
                                selection=["retention_table"])
        assert result.success
        return result.output_for_node("retention_table")

    check_availability(["available"] * 4)
    first = materialize()
    assert sorted(set(first["edition"])) == [EDITION, release.name]
    assert (first["percent_retained"] == 100.0).all()
    assert materialize().equals(first), "a rerun on the same evidence adds no row"

    check_availability(["gone", "available", "available", "available"])
    at = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
    with ledgers.availability_history() as history:  # the sensor found the val video gone twice, a week apart
        for days in (0, 7):
            history.record(Answer("luge0000003", "permanent", "removed", "video removed"),
                           at + datetime.timedelta(days=days), datetime.timedelta(days=7))
    second = materialize()
    assert len(second) == 2 * len(first)
    latest = second[second["as_of"] == second["as_of"].max()].set_index(["edition", "split"])
    assert latest.loc[(EDITION, "train"), ["clips_original", "clips_available"]].tolist() == [3, 2]
    assert latest.loc[(release.name, "val"), ["clips_original", "clips_available", "percent_retained"]].tolist() == [
        1, 0, 0.0]
    metadata = instance.get_latest_materialization_event(dg.AssetKey("retention_table")).asset_materialization.metadata
    shown = pd.DataFrame([record.data for record in metadata["table2"].value.records])
    assert set(shown["source"]) == {OURS, PAPER}
    assert metadata["retention_over_time"].value.startswith("![retention over time](data:image/png;base64,")
