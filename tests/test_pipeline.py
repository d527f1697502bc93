"""The pipeline end to end through Dagster on a small sandbox world: link-rot, deficits, queries, candidates,
clips, tasks to the crowd, votes back through the inbox sensor, acceptance and yields, and a release that holds
the sandbox profile's own minimum and split tolerance for every class."""

import datetime
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from kinetics_assets.editions.annotations import read_annotation_file

from kinetics_assets.voting.assets import vote_inbox_sensor
from resources.sandbox.crowd import SandboxCrowd

from kinetics_assets.definitions import STAGES
from kinetics_assets.editions.sensors import link_rot_sensor
from kinetics_assets.materialized import latest
from kinetics_assets.partitions import class_key
from kinetics_assets.policy import CurationPolicy
from resources.profiles import resources_for
from resources.sandbox.edition import write_previous_edition
from resources.sandbox.resource import SandboxPlatform
from resources.sandbox.world import World
from sandbox_pipeline import sandbox_resources

CLASSES = ["stacking dice", "luge"]
# The sandbox profile's policy, as `make demo` runs it: its minimum, candidate cap, split targets and tolerance.
POLICY = resources_for("sandbox")["policy"]


def policy(**changes) -> CurationPolicy:
    return CurationPolicy(**{**POLICY.model_dump(), **changes})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return _run_pipeline(tmp_path_factory.mktemp("pipeline"))


def _run_pipeline(root):
    platform = SandboxPlatform(
        classes=CLASSES, relevant_per_class=48, distractors_per_class=10, max_duration=25.0, cache_dir=str(root / "world"),
        clock_file=str(root / "clock"),  # the link-rot test moves every run's platform years on
    )
    edition_dir = root / "edition"
    # As the demo does, the edition's counts spread around the minimum; its seed puts "stacking dice" under it.
    write_previous_edition(World(platform.world_config(), root / "world"), edition_dir,
                           minimum=POLICY.minimum_clips_per_class, seed=1)
    resources = sandbox_resources(root, platform, edition_dir, POLICY)
    instance = dg.DagsterInstance.ephemeral()
    assets = [*dg.load_assets_from_modules(STAGES), *dg.load_asset_checks_from_modules(STAGES)]
    assert dg.materialize(
        assets, selection=["edition_annotations", "edition_availability", "class_deficits"], resources=resources,
        instance=instance,
    ).success
    deficits = _value(instance, "class_deficits")
    short = sorted(deficits.loc[deficits["deficit"] > 0, "class_name"])
    name = "stacking dice"
    assert name in short, "the edition must start with this class under the minimum"
    for other in CLASSES:
        _per_class(assets, resources, instance, ["class_clips", "retained_clips"], class_key(other))
    inbox = {"crowd_inbox": resources["crowd_inbox"]}
    with dg.build_sensor_context(instance=instance, resources=inbox) as first:
        requests = _replenish_and_vote(assets, resources, instance, short, first)
    assert sorted(r.partition_key for r in requests) == sorted(map(class_key, short))
    with dg.build_sensor_context(instance=instance, cursor=first.cursor, resources=inbox) as second:
        assert vote_inbox_sensor(second) == []  # the same files never trigger twice
        votes_cursor = second.cursor
    for other in CLASSES:
        _per_class(assets, resources, instance, ["retained_fingerprints"], class_key(other))
    released = _curate(assets, resources, instance, RELEASE)
    checks = {e.check_name: e.passed for e in released.get_asset_check_evaluations()}
    return instance, name, deficits.set_index("class_name").loc[name], assets, resources, votes_cursor, checks


RELEASE = ["duplicate_clusters", "final_clips", "edition_splits", "edition_release", "edition_geography",
           "class_yields"]


def _per_class(assets, resources, instance, selection, key):
    result = dg.materialize(assets, selection=selection, resources=resources, instance=instance, partition_key=key)
    assert result.success


def _replenish_and_vote(assets, resources, instance, classes, sensor_context):
    """A round for `classes`: queries to tasks, the sandbox crowd's answers, the inbox sensor, the votes decided."""
    for label in classes:
        _per_class(assets, resources, instance, REPLENISH, class_key(label))
        SandboxCrowd(platform=resources["video_platform"], inbox=resources["crowd_inbox"]).answer_pending(label)
    requests = vote_inbox_sensor(sensor_context)
    for request in requests:
        _per_class(assets, resources, instance, ["rater_votes", "accepted_clips", "accepted_fingerprints"],
                   request.partition_key)
    return requests


REPLENISH = ["search_queries", "candidate_videos", "candidate_clips", "annotation_tasks"]


def _curate(assets, resources, instance, selection):
    released = dg.materialize(assets, selection=selection, resources=resources, instance=instance, raise_on_error=False)
    assert released.success, [(e.check_name, e.metadata) for e in released.get_asset_check_evaluations() if not e.passed]
    return released


def _value(instance, asset, partition=None):
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition] if partition else None),
        limit=1,
    ).records
    return pd.read_parquet(records[0].event_log_entry.asset_materialization.metadata["path"].value)


def test_a_class_below_the_minimum_gets_a_budget(run):
    _, _, deficit, *_ = run
    assert deficit["deficit"] > 0
    # the profile's cap: the deficit over the prior yield would ask for more
    assert deficit["candidate_budget"] == POLICY.max_candidates_per_class


def test_candidates_respect_the_budget_and_skip_the_editions_videos(run):
    instance, name, deficit, *_ = run
    candidates = _value(instance, "candidate_videos", class_key(name))
    clips = _value(instance, "class_clips", class_key(name))
    assert 0 < len(candidates) <= deficit["candidate_budget"]
    assert not set(candidates["youtube_id"]) & set(clips["youtube_id"])
    assert candidates["youtube_id"].is_unique


def test_query_augmentation_contributes_candidates_plain_english_misses(run):
    instance, name, _, *_ = run
    queries = _value(instance, "search_queries", class_key(name))
    assert {"en", "fr", "es", "pt"} <= set(queries["language"])
    metadata = instance.get_latest_materialization_event(dg.AssetKey("candidate_videos")).asset_materialization.metadata
    assert metadata["found_only_by_augmented_queries"].value > 0
    assert metadata["unique_videos_found"].value == (
        metadata["found_by_class_name"].value + metadata["found_only_by_augmented_queries"].value
    )
    languages = {r.data["language"] for r in metadata["by_technique"].value.records}
    assert "en" in languages and len(languages) > 1


def test_link_rot_is_found_and_lowers_the_available_count(run):
    instance, name, deficit, *_ = run
    availability, clips = _value(instance, "edition_availability"), _value(instance, "class_clips", class_key(name))
    assert set(availability["status"]) <= {"available", "gone", "unknown"}
    gone = set(availability.loc[availability["status"] == "gone", "youtube_id"])
    assert set(clips.loc[clips["availability"] == "gone", "youtube_id"]) == gone & set(clips["youtube_id"])
    assert deficit["clips"] == int((clips["availability"] != "gone").sum())


def test_candidate_clips_are_stored_under_official_names(run):
    instance, name, _, *_ = run
    clips = _value(instance, "candidate_clips", class_key(name))
    done = clips[clips["status"] == "done"]
    candidates = _value(instance, "candidate_videos", class_key(name))
    assert len(done) > 0 and set(clips["youtube_id"]) == set(candidates["youtube_id"])
    for row in done.itertuples():
        assert row.path.endswith(f"/candidates/{class_key(name)}/{row.clip_id}.mp4")
        assert row.clip_id == f"{row.youtube_id}_{int(row.start):06d}_{int(row.end):06d}"
        assert row.frames == 250 or row.short_source


def test_tasks_mix_gold_clips_with_known_answers_into_the_candidates(run):
    instance, name, _, *_ = run
    tasks = _value(instance, "annotation_tasks", class_key(name))
    clips = _value(instance, "candidate_clips", class_key(name))
    candidates = tasks[tasks["kind"] == "candidate"]
    assert set(candidates["clip_id"]) == set(clips.loc[clips["status"] == "done", "clip_id"])
    gold = tasks[tasks["kind"] != "candidate"]
    assert set(gold["gold_answer"]) <= {"yes", "no"} and len(gold) > 0
    assert tasks["task_id"].is_unique


def test_votes_are_imported_once_and_clips_decided_by_three_yes(run):
    instance, name, _, *_ = run
    votes = _value(instance, "rater_votes", class_key(name))
    decisions = _value(instance, "accepted_clips", class_key(name))
    tasks = _value(instance, "annotation_tasks", class_key(name))
    assert set(votes["task_id"]) <= set(tasks["task_id"])
    assert not votes.duplicated(["task_id", "rater_id"]).any()
    assert set(decisions["clip_id"]) == set(tasks.loc[tasks["kind"] == "candidate", "clip_id"])
    accepted = decisions[decisions["decision"] == "accepted"]
    assert (accepted["yes"] >= 3).all() and len(accepted) > 0
    assert (decisions.loc[decisions["yes"] < 3, "decision"] != "accepted").all()


def test_yields_report_voted_positive_and_published_rates(run):
    instance, name, _, *_ = run
    yields = _value(instance, "class_yields").set_index("class_name")
    decisions = _value(instance, "accepted_clips", class_key(name))
    decided = decisions["decision"].isin(["accepted", "rejected"]).sum()
    assert yields.loc[name, "p_voted_positive"] == pytest.approx((decisions["decision"] == "accepted").sum() / decided)
    assert yields.loc[name, "paper_p_voted_positive"] == pytest.approx(0.3868)
    published = _value(instance, "final_clips")
    assert yields.loc[name, "p_published"] == pytest.approx((published["reason"] == "").sum() / decided)
    assert pd.isna(yields.loc[name, "paper_rank"]) is False


def test_release_passes_its_checks_and_round_trips_through_the_importer(run):
    instance, name, *_, checks = run
    assert {"class_minimum", "split_targets", "clip_rows", "video_splits"} <= set(checks) and all(checks.values())
    release = Path(_metadata(instance, "edition_release")["release"].value)
    for csv_name in ("train.csv", "validate.csv", "test.csv", "private/test_labelled.csv"):
        imported = read_annotation_file(release / csv_name, "Kinetics-700")
        assert imported.rejected.empty, imported.rejected
    splits = _value(instance, "edition_splits")
    assert (splits.groupby("youtube_id")["split"].nunique() == 1).all()  # no video in two splits
    assert not splits.duplicated(["label", "youtube_id"]).any()  # one clip per video within a class
    published = _value(instance, "final_clips")
    new = splits[splits["origin"] == "new"]
    assert len(new) == int((published["reason"] == "").sum()) > 0
    yields = _value(instance, "class_yields").set_index("class_name")
    assert yields.loc[name, "published"] == len(new[new["label"] == name])


def test_every_class_reaches_the_profiles_minimum(run):
    instance, *_, checks = run
    splits = _value(instance, "edition_splits")
    counts = splits.groupby("label").size().reindex(CLASSES, fill_value=0)
    assert (counts >= POLICY.minimum_clips_per_class).all(), counts.to_dict()
    assert checks["class_minimum"] and checks["split_targets"]  # at the profile's minimum and split tolerance


def test_raising_the_minimum_fails_the_check_naming_every_short_class_and_blocks_the_release(run):
    instance, name, _, assets, resources, *_ = run
    strict = {**resources, "policy": policy(minimum_clips_per_class=1000)}
    released_before = instance.get_latest_materialization_event(dg.AssetKey("edition_release")).run_id
    result = dg.materialize(
        assets, selection=["edition_splits", "edition_release"], resources=strict, instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    minimum = next(e for e in result.get_asset_check_evaluations() if e.check_name == "class_minimum")
    assert not minimum.passed
    short = minimum.metadata["classes_below_minimum"].value
    assert set(short) == set(CLASSES) and all(count < 1000 for count in short.values())
    latest = instance.get_latest_materialization_event(dg.AssetKey("edition_release")).run_id
    assert latest == released_before  # blocked: no new release


def _metadata(instance, asset):
    return instance.get_latest_materialization_event(dg.AssetKey(asset)).asset_materialization.metadata



def test_link_rot_years_on_replenishes_the_classes_it_takes_under_the_minimum_into_a_second_release(run):
    """The loop end to end; runs last, as it moves the world on (the tests above read the first release)."""
    instance, _, _, assets, resources, votes_cursor, _ = run
    platform, minimum = resources["video_platform"], POLICY.minimum_clips_per_class
    first, published = _metadata(instance, "edition_release"), _value(instance, "edition_release")
    world = World(platform.world_config(), Path(platform.cache_dir))  # the world's own record: tests may read it

    def gone_on(day):
        return {video for video in published["youtube_id"] if not world.availability(video, day).available}

    def short_on(day):
        counts = published[~published["youtube_id"].isin(gone_on(day))].groupby("label").size()
        return sorted(label for label in CLASSES if counts.get(label, 0) < minimum)

    clock = platform.shared_clock()
    later = next(day for day in (clock.today() + datetime.timedelta(days=365 * years) for years in range(1, 11))
                 if short_on(day))
    short, gone = short_on(later), gone_on(later)
    tried = {label: set(value["youtube_id"]) for label in short
             if (value := latest(instance, "candidate_clips", class_key(label))[0]) is not None}
    _curate(assets, resources, instance, ["retention_table"])  # Table 2 as the first release was published
    clock.set(later)  # for every run and sensor from now on

    watch = {"ledgers": resources["ledgers"], "rate_limit": resources["rate_limit"], "video_platform": platform,
             "policy": policy(gone_after_s=0)}
    with dg.build_sensor_context(instance=instance, resources=watch) as tick:
        assert link_rot_sensor(tick).run_requests == []  # one permanent answer is not enough
        cursor = tick.cursor
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=watch) as tick:
        requests = link_rot_sensor(tick).run_requests
        cursor = tick.cursor
    assert sorted(r.partition_key for r in requests) == sorted(map(class_key, short))

    with dg.build_sensor_context(instance=instance, cursor=votes_cursor,
                                 resources={"crowd_inbox": resources["crowd_inbox"]}) as votes:
        voted = _replenish_and_vote(assets, resources, instance, short, votes)
    assert sorted(r.partition_key for r in voted) == sorted(map(class_key, short))
    for label in short:  # the round searched afresh, budgeted by the class as it stands now, and fetched no video twice
        candidates = _value(instance, "candidate_videos", class_key(label))
        assert len(candidates) > 0 and not set(candidates["youtube_id"]) & tried.get(label, set())
    released = _curate(assets, resources, instance, ["class_deficits", *RELEASE, "retention_table"])
    assert all(e.passed for e in released.get_asset_check_evaluations())

    second, now = _metadata(instance, "edition_release"), _value(instance, "edition_release")
    assert second["release_name"].value.endswith("-2") and second["parent"].value == first["release_name"].value
    assert not set(now["youtube_id"]) & gone  # nothing that rotted is published again
    assert (now.groupby("label").size().reindex(CLASSES, fill_value=0) >= minimum).all()
    changes = pd.read_csv(Path(second["release"].value) / "changes.csv").set_index("class_name")
    lost = published[published["youtube_id"].isin(gone)].groupby("label").size()
    assert changes["lost_to_link_rot"].to_dict() == {label: int(lost.get(label, 0)) for label in changes.index}
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=watch) as tick:
        assert link_rot_sensor(tick).run_requests == []  # the second release is watched afresh: nothing short
    retention = _value(instance, "retention_table")
    of_first = retention[retention["edition"] == first["release_name"].value].groupby("as_of")["clips_available"].sum()
    assert len(of_first) == 2 and of_first.iloc[0] - of_first.iloc[1] == len(gone)  # the sensor's answers: a new point

