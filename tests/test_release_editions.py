"""edition_release through Dagster: a second edition after link-rot is a new release beside the first, its
parent named, its notes counting the clips the availability history declared gone; a rerun on the same
content is the same release and says so."""

import datetime

import dagster as dg
import pandas as pd

from kinetics_assets.editions.history import Answer
from kinetics_assets.release.assets import RELEASES, edition_release
from kinetics_assets.release.writer import LATEST
from resources.editions import EditionCatalog, EditionFiles
from resources.ledgers import Ledgers
from resources.storage import LocalArtifactStore, LocalParquetIOManager

EDITION = "sandbox-previous"
STEM = f"{EDITION}-replenished"


def _edition() -> pd.DataFrame:
    return pd.DataFrame([{"label": "luge", "youtube_id": f"luge{k:07d}", "time_start": 0.0, "time_end": 10.0,
                          "split": ("train", "train", "val", "test")[k], "edition": EDITION,
                          "taxonomy": "Kinetics-700"} for k in range(4)])


def test_a_second_edition_after_link_rot_is_a_new_release_beside_the_first(tmp_path):
    edition = _edition()
    splits = {"now": edition.drop(columns=["edition", "taxonomy"]).assign(origin="retained", clip_path="")}
    upstream = [dg.asset(name="edition_annotations")(lambda: edition),
                dg.asset(name="edition_availability")(
                    lambda: pd.DataFrame({"youtube_id": edition["youtube_id"], "status": "available"})),
                dg.asset(name="edition_splits")(lambda: splits["now"])]
    ledgers = Ledgers(root=str(tmp_path / "ledgers"))
    artifacts = LocalArtifactStore(root=str(tmp_path / "artifacts"))
    resources = {"io_manager": LocalParquetIOManager(base_dir=str(tmp_path / "assets")), "artifacts": artifacts,
                 "ledgers": ledgers,
                 "editions": EditionCatalog(editions=[EditionFiles(name=EDITION, taxonomy="Kinetics-700", files=[])],
                                            current=EDITION)}
    instance = dg.DagsterInstance.ephemeral()

    def release() -> dict:
        assert dg.materialize([*upstream, edition_release], resources=resources, instance=instance).success
        event = instance.get_latest_materialization_event(dg.AssetKey("edition_release"))
        return event.asset_materialization.metadata

    first = release()
    assert first["release_name"].value == f"{STEM}-1" and first["parent"].value == EDITION
    assert first["new_release"].value is True

    # a year on, the link-rot sensor confirmed a train video gone (two permanent answers a week apart), and a
    # replenished clip takes its place
    at = datetime.datetime(2027, 12, 1, tzinfo=datetime.UTC)
    with ledgers.availability_history() as history:
        for days in (0, 7):
            history.record(Answer("luge0000000", "permanent", "removed", "video removed"),
                           at + datetime.timedelta(days=days), datetime.timedelta(days=7))
    new_clip = {"label": "luge", "youtube_id": "newclip0000", "time_start": 3.0, "time_end": 13.0, "split": "train",
                "origin": "new", "clip_path": ""}
    splits["now"] = pd.concat([splits["now"].iloc[1:], pd.DataFrame([new_clip])], ignore_index=True)
    second = release()
    root = artifacts.path(RELEASES)
    assert second["release_name"].value == f"{STEM}-2" and second["parent"].value == f"{STEM}-1"
    assert {p.name for p in root.iterdir()} == {f"{STEM}-1", f"{STEM}-2", LATEST}
    changes = {r.data["class_name"]: r.data for r in second["changes_per_class"].value.records}
    assert (changes["luge"]["lost_to_link_rot"], changes["luge"]["removed_otherwise"], changes["luge"]["added"]) == (
        1, 0, 1)
    assert "| luge | 4 | 1 | 0 | 1 | 4 |" in (root / f"{STEM}-2" / "RELEASE_NOTES.md").read_text()

    again = release()
    assert again["release_name"].value == f"{STEM}-2" and again["new_release"].value is False
    assert again["content_sha256"].value == second["content_sha256"].value
