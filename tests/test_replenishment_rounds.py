"""Two replenishment rounds for one class through Dagster on a small sandbox world: the second round counts the
first's accepted clips, budgets with the class's measured yield, never re-fetches a video the first tried, and
keeps the first round's decisions beside its own."""

import dagster as dg
import pandas as pd
import pytest

from kinetics_assets.acquisition.sensors import next_round_sensor
from kinetics_assets.definitions import STAGES
from kinetics_assets.partitions import class_key
from kinetics_assets.policy import CurationPolicy
from resources.profiles import resources_for
from resources.sandbox.crowd import SandboxCrowd
from resources.sandbox.edition import write_previous_edition
from resources.sandbox.resource import SandboxPlatform
from resources.sandbox.world import World
from sandbox_pipeline import sandbox_resources

NAME = "stacking dice"
KEY = class_key(NAME)
# An edition of about 4 clips per class against a minimum of 8, and 3 candidates a round: two rounds needed.
EDITION_MINIMUM, MINIMUM, CAP = 4, 8, 3


@pytest.fixture(scope="module")
def rounds(tmp_path_factory):
    root = tmp_path_factory.mktemp("rounds")
    platform = SandboxPlatform(classes=[NAME], relevant_per_class=24, distractors_per_class=4, max_duration=14.0,
                               cache_dir=str(root / "world"))
    edition_dir = root / "edition"
    write_previous_edition(World(platform.world_config(), root / "world"), edition_dir, minimum=EDITION_MINIMUM)
    policy = CurationPolicy(**{**resources_for("sandbox")["policy"].model_dump(),
                               "minimum_clips_per_class": MINIMUM, "max_candidates_per_class": CAP})
    resources = sandbox_resources(root, platform, edition_dir, policy)
    instance = dg.DagsterInstance.ephemeral()
    materialize = materializer(resources, instance)

    def value(asset, partition=None):
        return _latest(instance, asset, partition)

    crowd = SandboxCrowd(platform=platform, inbox=resources["crowd_inbox"])
    materialize(["edition_annotations", "edition_availability", "class_deficits"])
    materialize(["class_clips", "retained_clips", "search_queries", "candidate_videos", "candidate_clips",
                 "annotation_tasks"], KEY)
    first = {"deficits": value("class_deficits"), "candidates": value("candidate_videos", KEY),
             "clips": value("candidate_clips", KEY)}
    materialize(["class_deficits"])  # votes out: the fetched clips count as pending
    first["deficits_while_voting"] = value("class_deficits")
    crowd.answer_pending(NAME)
    materialize(["rater_votes", "accepted_clips", "accepted_fingerprints", "retained_fingerprints"], KEY)
    first["decisions"] = value("accepted_clips", KEY)
    first["next_round"] = next_round(instance, resources)
    assert next_round(instance, resources, first["next_round"].cursor).run_requests == []  # the same votes: no round
    materialize(["duplicate_clusters", "final_clips", "class_yields"])
    first["yields"] = value("class_yields")
    materialize(["class_deficits"])
    materialize(["candidate_videos", "candidate_clips", "annotation_tasks"], KEY)
    second = {"deficits": value("class_deficits"), "candidates": value("candidate_videos", KEY),
              "clips": value("candidate_clips", KEY), "search": _metadata(instance, "candidate_videos", KEY),
              "fetch": _metadata(instance, "candidate_clips", KEY)}
    with resources["ledgers"].clip_ledger() as ledger:
        downloads = {entry.youtube_id: entry.downloads for entry in ledger.entries()
                     if entry.clip_key.startswith(f"candidates/{KEY}/")}
    crowd.answer_pending(NAME)
    materialize(["rater_votes", "accepted_clips"], KEY)
    second["decisions"] = value("accepted_clips", KEY)
    second["next_round"] = next_round(instance, resources, first["next_round"].cursor)
    second["next_round_under"] = lambda other: next_round(instance, {**resources, "policy": other},
                                                          first["next_round"].cursor)
    materialize(["class_deficits"])
    second["deficits_after_votes"] = value("class_deficits")
    return first, second, downloads


def materializer(resources, instance):
    """materialize(selection, partition=None): one successful run of the stages' assets on `instance`."""
    assets = [*dg.load_assets_from_modules(STAGES), *dg.load_asset_checks_from_modules(STAGES)]

    def materialize(selection, partition=None):
        result = dg.materialize(assets, selection=selection, resources=resources, instance=instance,
                                partition_key=partition)
        assert result.success
        return result

    return materialize


def next_round(instance, resources, cursor=None) -> dg.SensorResult:
    """What `next_round_sensor` answers to the votes decided since `cursor`."""
    with dg.build_sensor_context(instance=instance, cursor=cursor,
                                 resources={"ledgers": resources["ledgers"], "policy": resources["policy"]}) as context:
        return next_round_sensor(context)


def _records(instance, asset, partition):
    return instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition] if partition else None),
        limit=1,
    ).records


def _metadata(instance, asset, partition=None):
    return _records(instance, asset, partition)[0].event_log_entry.asset_materialization.metadata


def _latest(instance, asset, partition=None):
    return pd.read_parquet(_metadata(instance, asset, partition)["path"].value)


def _row(deficits):
    return deficits.set_index("class_name").loc[NAME]


def test_the_first_round_is_budgeted_by_the_note_and_its_fetched_clips_count_as_pending(rounds):
    first, *_ = rounds
    row = _row(first["deficits"])
    assert row["status"] == "short" and row["yield_source"] == "note_appendix_a"
    assert row["candidate_budget"] == CAP == len(first["candidates"])
    fetched = int((first["clips"]["status"] == "done").sum())
    while_voting = _row(first["deficits_while_voting"])
    assert fetched > 0 and while_voting["pending"] == fetched
    assert while_voting["deficit"] == max(0, row["deficit"] - fetched)  # the same clips are not asked for twice


def test_a_second_round_never_refetches_a_video_the_first_tried(rounds):
    first, second, downloads = rounds
    tried = set(first["candidates"]["youtube_id"])
    assert len(second["candidates"]) > 0
    assert not set(second["candidates"]["youtube_id"]) & tried
    assert second["search"]["tried_before"].value >= len(tried)
    clips = second["clips"].set_index("youtube_id")
    new = clips.loc[list(second["candidates"]["youtube_id"])]
    assert second["fetch"]["fetched_this_run"].value == int((new["status"] == "done").sum())
    assert all(count <= 1 for count in downloads.values())  # no candidate video downloaded twice


def test_the_first_rounds_clips_and_decisions_carry_into_the_second_round(rounds):
    first, second, _ = rounds
    carried = first["clips"].loc[first["clips"]["status"] == "done", "clip_id"]
    assert set(carried) <= set(second["clips"]["clip_id"])  # beside the new ones, not downloaded again
    before = first["decisions"].set_index("clip_id")["decision"]
    after = second["decisions"].set_index("clip_id")["decision"]
    assert after.loc[before.index].to_dict() == before.to_dict()  # the same votes, the same decisions
    accepted = second["decisions"].loc[second["decisions"]["decision"] == "accepted", "youtube_id"].nunique()
    row = _row(second["deficits_after_votes"])
    assert row["accepted"] == accepted > _row(second["deficits"])["accepted"]  # progress kept, not replaced


def test_the_second_round_counts_accepted_clips_and_budgets_with_the_measured_yield(rounds):
    first, second, _ = rounds
    row = _row(second["deficits"])
    decisions = first["decisions"]
    accepted = decisions.loc[decisions["decision"] == "accepted", "youtube_id"].nunique()
    assert row["accepted"] == accepted and row["pending"] == 0  # every first-round clip is decided
    assert row["deficit"] == max(0, MINIMUM - row["clips"] - accepted)
    measured = first["yields"].set_index("class_name").loc[NAME]
    assert row["yield_source"] == "history"
    expected = measured["p_published"] if pd.notna(measured["p_published"]) else measured["p_voted_positive"]
    assert row["expected_yield"] == pytest.approx(expected)
    assert second["search"]["budget"].value == row["candidate_budget"]
    assert second["search"]["yield_source"].value == "history"  # shown beside the budget in the UI


def test_a_class_whose_search_finds_no_untried_video_stops_with_the_reason_not_an_error(tmp_path):
    # A world with hardly more videos than its edition: the first round takes every untried one it finds.
    platform = SandboxPlatform(classes=[NAME], relevant_per_class=10, distractors_per_class=1, max_duration=14.0,
                               cache_dir=str(tmp_path / "world"))
    write_previous_edition(World(platform.world_config(), tmp_path / "world"), tmp_path / "edition", minimum=4)
    policy = CurationPolicy(**{**resources_for("sandbox")["policy"].model_dump(), "minimum_clips_per_class": 12})
    resources = sandbox_resources(tmp_path, platform, tmp_path / "edition", policy)
    instance = dg.DagsterInstance.ephemeral()
    materialize = materializer(resources, instance)

    materialize(["edition_annotations", "edition_availability", "class_deficits"])
    materialize(["class_clips", "retained_clips", "search_queries", "candidate_videos", "candidate_clips"], KEY)
    first = _metadata(instance, "candidate_videos", KEY)
    assert first["candidates"].value > 0 and not first["supply_exhausted"].value
    materialize(["class_deficits"])
    materialize(["candidate_videos"], KEY)
    second = _metadata(instance, "candidate_videos", KEY)
    assert second["candidates"].value == 0 and second["budget"].value > 0
    assert second["supply_exhausted"].value is True
    assert second["stop_reason"].value == "candidate supply exhausted: search found no untried usable video"
    materialize(["class_deficits"])
    row = _row(_latest(instance, "class_deficits"))
    assert row["deficit"] > 0 and row["status"] == "supply_exhausted" and row["reason"] == second["stop_reason"].value
    assert _metadata(instance, "class_deficits")["classes_supply_exhausted"].value == 1
    materialize(["annotation_tasks"], KEY)
    SandboxCrowd(platform=platform, inbox=resources["crowd_inbox"]).answer_pending(NAME)
    materialize(["rater_votes", "accepted_clips"], KEY)
    stop = next_round(instance, resources)  # its votes decided, the class short, but no round is due
    assert stop.run_requests == [] and stop.skip_reason.skip_message == f"{NAME}: supply_exhausted"


def test_a_class_still_short_after_its_votes_gets_its_next_round_once_per_decision(rounds):
    first, second, _ = rounds
    for done in (first, second):
        [request] = done["next_round"].run_requests
        assert request.partition_key == KEY and request.run_key.startswith(f"round:{KEY}:")
    assert first["next_round"].run_requests[0].run_key != second["next_round"].run_requests[0].run_key
    left = _row(second["deficits_after_votes"])
    assert left["status"] == "short" and second["next_round"].run_requests[0].tags["kinetics/deficit"] == str(
        left["deficit"])


def test_a_class_at_the_minimum_after_its_votes_gets_no_next_round(rounds):
    _, second, _ = rounds
    counted = _row(second["deficits_after_votes"])
    reached = counted["clips"] + counted["accepted"] + counted["pending"]
    policy = CurationPolicy(**{**resources_for("sandbox")["policy"].model_dump(), "minimum_clips_per_class": reached})
    result = second["next_round_under"](policy)
    assert result.run_requests == [] and result.skip_reason.skip_message == f"{NAME}: at_minimum"
