"""Per-class backfills launched as the UI launches them (GraphQL ``launchPartitionBackfill``), run by the daemon.

Protects: a backfill over a selection of classes is accepted, the daemon's backfill iteration submits it as one
run per class (the assets' BackfillPolicy, multi_run with one partition per run), the runs go through the run
queue and launcher, and every selected class's partition is materialized (the others are not); a backfill over
all classes targets every one of the 700 partitions.
"""

from __future__ import annotations

import logging
import time

import dagster as dg
from dagster._core.execution.backfill import BulkActionStatus
from dagster._daemon.backfill import execute_backfill_iteration
from dagster_graphql.test.utils import execute_dagster_graphql

from kinetics_assets.editions.taxonomy import load_classes
from kinetics_assets.instance import WORKSPACE
from kinetics_assets.partitions import class_key
from kinetics_assets.sensor_ticks import run_queued, workspace_context

LAUNCH = """
mutation LaunchPartitionBackfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}
"""
LOGGER = logging.getLogger("test_backfills")
ASSET = "search_queries"  # per class, no upstream, no outside world: the cheapest asset to backfill
TIMEOUT_S = 600


def _launch(context, params: dict) -> str:
    result = execute_dagster_graphql(context.create_request_context(), LAUNCH, {"params": params})
    assert not result.errors, result.errors
    payload = result.data["launchPartitionBackfill"]
    assert payload["__typename"] == "LaunchBackfillSuccess", payload
    return payload["backfillId"]


def partition_range(run: dg.DagsterRun) -> tuple[str, str]:
    tags = run.tags
    if "dagster/partition" in tags:
        return tags["dagster/partition"], tags["dagster/partition"]
    return tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]


def run_backfill(context, backfill_id: str) -> dg.DagsterInstance:
    """The daemon's backfill iterations, and the runs they submit, until the backfill is no longer requested."""
    instance = context.instance
    deadline = time.monotonic() + TIMEOUT_S
    while instance.get_backfill(backfill_id).status == BulkActionStatus.REQUESTED:
        assert time.monotonic() < deadline, f"backfill {backfill_id} still requested after {TIMEOUT_S} s"
        for error in execute_backfill_iteration(context, LOGGER):
            assert error is None, error.to_string()
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
        run_queued(context, [run.run_id for run in runs], timeout_s=TIMEOUT_S)
    return instance


def assert_backfill_runs_each_class_once(instance: dg.DagsterInstance, keys: list[str], asset: str) -> None:
    """Launch a backfill of `asset` over the class `keys` through GraphQL, run it, and check one run per class."""
    with workspace_context(instance, WORKSPACE) as context:
        backfill_id = _launch(context, {"partitionNames": keys, "assetSelection": [{"path": [asset]}],
                                        "fromFailure": False})
        run_backfill(context, backfill_id)
    assert instance.get_backfill(backfill_id).status == BulkActionStatus.COMPLETED_SUCCESS
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
    assert sorted(partition_range(run) for run in runs) == sorted((key, key) for key in keys)  # a class a run
    assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
    assert instance.get_materialized_partitions(dg.AssetKey(asset)) == set(keys)


def test_a_backfill_of_two_classes_materializes_each_in_its_own_run(tmp_path):
    keys = [class_key(name) for name in load_classes("Kinetics-700-2020")[:2]]
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        assert_backfill_runs_each_class_once(instance, keys, ASSET)


def test_a_backfill_of_all_classes_targets_all_700(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance, workspace_context(instance, WORKSPACE) as context:
        backfill_id = _launch(context, {"allPartitions": True, "assetSelection": [{"path": [ASSET]}]})
        backfill = instance.get_backfill(backfill_id)
        assert backfill.status == BulkActionStatus.REQUESTED
        target = backfill.asset_backfill_data.target_subset
        targeted = {(key.asset_key.to_user_string(), key.partition_key) for key in target.iterate_asset_partitions()}
        assert targeted == {(ASSET, class_key(name)) for name in load_classes("Kinetics-700-2020")}
