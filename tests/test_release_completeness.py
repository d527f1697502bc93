"""A class whose per-class run never completed must not vanish from the release: the curate job's blocking check
names it."""

import dagster as dg
import pandas as pd

from jobs import CURATE_JOB
from kinetics_assets.partitions import class_key
from kinetics_assets.release.assets import every_expected_class_present
from kinetics_assets.release.completeness import expected_partitions, missing_partitions

# The third class's pending clips close its deficit, but its votes must still be decided before the release.
DEFICITS = pd.DataFrame({"class_name": ["luge", "stacking dice", "passing American football (in game)"],
                         "clips": [5, 8, 2], "pending": [0, 0, 6], "minimum": 8, "deficit": [3, 0, 0]})


def _materialize(instance, asset, classes):
    for name in classes:
        instance.report_runless_asset_event(dg.AssetMaterialization(asset, partition=class_key(name)))


def test_missing_lists_each_expected_class_without_a_partition_and_why():
    expected = expected_partitions(DEFICITS, ("retained_fingerprints",), ("accepted_fingerprints",))
    assert set(expected["accepted_fingerprints"]) == {"luge", "passing American football (in game)"}
    materialized = {"retained_fingerprints": {class_key(n) for n in DEFICITS["class_name"]},
                    "accepted_fingerprints": {class_key("luge")}}
    missing = missing_partitions(expected, materialized)
    assert missing[["class_name", "asset"]].values.tolist() == [
        ["passing American football (in game)", "accepted_fingerprints"]]
    assert "under the minimum" in missing["why_expected"].iloc[0]


def test_the_check_fails_naming_the_class_whose_votes_never_arrived():
    instance = dg.DagsterInstance.ephemeral()
    _materialize(instance, "retained_fingerprints", DEFICITS["class_name"])
    _materialize(instance, "accepted_fingerprints", ["luge"])
    result = every_expected_class_present(dg.build_asset_check_context(instance=instance), DEFICITS)
    assert not result.passed
    assert "passing American football (in game) (accepted_fingerprints)" in result.description
    assert result.metadata["missing"].value == 1

    _materialize(instance, "accepted_fingerprints", ["passing American football (in game)"])
    assert every_expected_class_present(dg.build_asset_check_context(instance=instance), DEFICITS).passed


def test_the_check_blocks_the_curate_job():
    from kinetics_assets.definitions import defs

    check_key = dg.AssetCheckKey(dg.AssetKey("duplicate_clusters"), "every_expected_class_present")
    assert check_key in defs.resolve_job_def(CURATE_JOB).asset_layer.asset_graph.asset_check_keys
    assert defs.resolve_asset_graph().get_check_spec(check_key).blocking
