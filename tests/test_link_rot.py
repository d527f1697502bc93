"""The link-rot loop: the availability history's rule, the oEmbed-first probe, the sensor's rotation and deficits.

Pure tests drive `link_rot_tick` with scripted platform answers and explicit times; the sensor tests tick
`link_rot_sensor` on an ephemeral instance against a small sandbox world whose clock jumps years ahead."""

import datetime
import io
from functools import reduce

import dagster as dg
import pandas as pd
import pytest
from yt_dlp.networking.common import Response
from yt_dlp.networking.exceptions import HTTPError as YtdlpHTTPError
from yt_dlp.utils import DownloadError

from kinetics_assets.editions.history import Answer, AvailabilityHistory, VideoStatus, next_status
from kinetics_assets.editions.link_rot import clip_availability
from kinetics_assets.editions.probe import check_video
from kinetics_assets.editions.sensors import (
    RotationCursor,
    link_rot_sensor,
    link_rot_tick,
    published_pairs,
    weekly_availability_sweep,
)
from kinetics_assets.partitions import class_key
from kinetics_assets.policy import CurationPolicy
from resources.ledgers import Ledgers
from resources.rate_limit import RateLimit
from resources.sandbox.resource import SandboxPlatform
from resources.sandbox.world import DEMO_CLASSES, World
from resources.storage import LocalParquetIOManager

T0 = datetime.datetime(2026, 1, 5, 12, 0, tzinfo=datetime.UTC)
WEEK = datetime.timedelta(days=7)
REMOVED = "ERROR: [youtube] x: Video unavailable. This video has been removed by the uploader"
BOT_CHECK = "ERROR: [youtube] x: Sign in to confirm you're not a bot. Use --cookies-from-browser"


def ids(n: int, prefix: str = "v") -> list[str]:
    return [f"{prefix}{i:010d}"[:11] for i in range(n)]


def http_error(status: int) -> YtdlpHTTPError:
    return YtdlpHTTPError(Response(io.BytesIO(b""), "https://example.invalid/oembed", {}, status=status))


class ScriptedPlatform:
    """A check whose answer per video is set by the test: None plays, an exception is the platform's answer."""

    def __init__(self) -> None:
        self.answers: dict[str, BaseException | None] = {}
        self.calls: list[str] = []

    def __call__(self, video_id: str) -> None:
        self.calls.append(video_id)
        answer = self.answers.get(video_id)
        if answer is not None:
            raise answer


@pytest.fixture
def history(ledger_backend):
    with AvailabilityHistory(ledger_backend.location()) as store:
        yield store


def publish(history: AvailabilityHistory, clips: dict[str, list[str]], release: str = "r1") -> None:
    history.replace_roster(release, [[(label, video) for label, videos in clips.items() for video in videos]])


def tick(history, cursor, check, now=T0, batch=100, minimum=1, gone_after=WEEK, release="r1"):
    return link_rot_tick(history, cursor, release, check, now=now, batch=batch, minimum=minimum,
                         gone_after=gone_after)


# -- the rule ---------------------------------------------------------------------------------------------------
def fold(answers: list[tuple[datetime.datetime, str]], gone_after=WEEK) -> VideoStatus:
    return reduce(lambda status, step: next_status(status, Answer("v", step[1], "removed" if step[1] == "permanent"
                                                                  else None), step[0], gone_after),
                  answers, VideoStatus())


def test_gone_needs_two_permanent_answers_at_least_the_interval_apart():
    assert fold([(T0, "permanent")]).status == "suspect"
    assert fold([(T0, "permanent"), (T0 + WEEK - datetime.timedelta(seconds=1), "permanent")]).status == "suspect"
    assert fold([(T0, "permanent"), (T0 + WEEK, "permanent")]).status == "gone"
    assert fold([(T0, "permanent"), (T0 + WEEK, "permanent"), (T0 + 2 * WEEK, "available")]).status == "available"


def test_transient_session_and_later_answers_neither_count_nor_reset():
    noise = [(T0 + datetime.timedelta(days=d), kind) for d, kind in enumerate(["transient", "session", "later"] * 5)]
    assert fold(noise).status == "unknown"
    assert fold([(T0, "permanent"), *noise]).status == "suspect"
    assert fold([(T0, "permanent"), *noise, (T0 + WEEK, "permanent")]).status == "gone"


def test_an_available_answer_between_two_permanent_ones_restarts_the_wait():
    status = fold([(T0, "permanent"), (T0 + WEEK, "available"), (T0 + WEEK + datetime.timedelta(days=1), "permanent"),
                   (T0 + 2 * WEEK, "permanent")])
    assert status.status == "suspect" and status.permanent_since == T0 + WEEK + datetime.timedelta(days=1)


def test_the_history_survives_a_restart(ledger_backend):
    path = ledger_backend.location()
    with AvailabilityHistory(path) as first:
        first.record(Answer("aaaaaaaaaaa", "permanent", "removed", "gone"), T0, WEEK)
    with AvailabilityHistory(path) as second:
        assert second.record(Answer("aaaaaaaaaaa", "permanent", "removed", "gone"), T0 + WEEK, WEEK).status == "gone"
        assert [answer.answer for _, answer in second.answers("aaaaaaaaaaa")] == ["permanent", "permanent"]


# -- the probe --------------------------------------------------------------------------------------------------
def test_oembed_200_settles_it_and_only_an_ambiguous_answer_pays_for_the_full_check():
    full_checks = []

    def oembed_says(status):
        def oembed(video_id):
            if status != 200:
                raise http_error(status)
        return oembed

    check_video("v", oembed_says(200), full_checks.append)
    assert full_checks == []
    for ambiguous in (401, 403, 404):
        check_video("v", oembed_says(ambiguous), full_checks.append)  # the full check plays: available
    assert full_checks == ["v"] * 3
    with pytest.raises(YtdlpHTTPError):
        check_video("v", oembed_says(429), full_checks.append)  # the session's fate: no second request
    assert full_checks == ["v"] * 3


# -- the tick ---------------------------------------------------------------------------------------------------
def test_the_cursor_advances_by_the_batch_and_wraps_with_a_new_sweep_date(history):
    publish(history, {"luge": ids(5)})
    platform = ScriptedPlatform()
    cursor = RotationCursor()
    positions = []
    for _ in range(3):
        cursor = tick(history, cursor, platform, batch=2).cursor
        positions.append(cursor.position)
    assert positions == [2, 4, 5] and cursor.sweep == T0.date().isoformat()
    assert platform.calls == ids(5)
    later = T0 + datetime.timedelta(days=1)
    cursor = tick(history, RotationCursor.parse(cursor.dump()), platform, batch=2, now=later).cursor
    assert (cursor.position, cursor.sweep) == (2, later.date().isoformat())
    assert platform.calls[5:] == ids(2)
    assert len(cursor.dump()) < 80  # compact: position and dates, never the videos


def test_a_new_release_restarts_the_rotation(history):
    publish(history, {"luge": ids(5)})
    cursor = tick(history, RotationCursor(), ScriptedPlatform(), batch=2).cursor
    publish(history, {"luge": ids(3, "w")}, release="r2")
    cursor = tick(history, cursor, ScriptedPlatform(), batch=2, release="r2").cursor
    assert (cursor.release, cursor.position) == ("r2", 2)


def test_one_permanent_answer_is_not_enough(history):
    videos = ids(4)
    publish(history, {"luge": videos})
    platform = ScriptedPlatform()
    platform.answers[videos[0]] = DownloadError(REMOVED)
    first = tick(history, RotationCursor(), platform, minimum=4)
    assert first.probed.statuses[videos[0]].status == "suspect" and first.deficits == []
    soon = tick(history, first.cursor, platform, minimum=4, now=T0 + datetime.timedelta(days=1))
    assert soon.probed.statuses[videos[0]].status == "suspect" and soon.deficits == []


def test_a_due_suspect_is_reprobed_ahead_of_the_rotation_and_confirmed(history):
    videos = ids(6)
    publish(history, {"luge": videos})
    platform = ScriptedPlatform()
    platform.answers[videos[5]] = DownloadError(REMOVED)
    cursor = tick(history, RotationCursor(), platform, batch=6).cursor  # videos[5] is suspect
    platform.calls.clear()
    confirmed = tick(history, cursor, platform, batch=2, minimum=6, now=T0 + WEEK)
    assert platform.calls == [videos[5], videos[0]]  # the due suspect first, then the rotation's next clip
    assert confirmed.probed.statuses[videos[5]].status == "gone"
    assert [(d.class_name, d.available) for d in confirmed.deficits] == [("luge", 5)]


def test_transient_answers_never_mark_a_video_gone(history):
    videos = ids(3)
    publish(history, {"luge": videos})
    platform = ScriptedPlatform()
    platform.answers[videos[1]] = http_error(503)
    cursor = RotationCursor()
    for day in range(0, 60, 7):
        result = tick(history, cursor, platform, minimum=3, now=T0 + datetime.timedelta(days=day))
        cursor = result.cursor
        assert result.probed.statuses[videos[1]].status == "unknown" and result.deficits == []
    assert {answer.answer for _, answer in history.answers(videos[1])} == {"transient"}


def test_a_session_level_answer_ends_the_tick_and_never_marks_a_video_gone(history):
    videos = ids(4)
    publish(history, {"luge": videos})
    platform = ScriptedPlatform()
    platform.answers[videos[0]] = DownloadError(REMOVED)
    cursor = tick(history, RotationCursor(), platform).cursor  # videos[0] suspect
    for video in videos:
        platform.answers[video] = DownloadError(BOT_CHECK)
    platform.calls.clear()
    refused = tick(history, cursor, platform, minimum=4, now=T0 + WEEK)
    assert platform.calls == [videos[0]]  # the session is refused: no further request this tick
    assert refused.probed.refused is not None and refused.deficits == []
    assert refused.probed.statuses[videos[0]].status == "suspect"  # not confirmed by a bot check
    assert refused.cursor.position == 0  # the rotation did not move past unprobed clips
    assert history.answers(videos[0])[-1][1].answer == "session"


def test_a_class_exactly_at_the_minimum_does_not_trigger_and_one_below_does(history):
    publish(history, {"luge": ids(4, "a"), "stacking dice": ids(5, "b")})
    platform = ScriptedPlatform()
    for video in (ids(4, "a")[0], ids(5, "b")[0]):
        platform.answers[video] = DownloadError(REMOVED)
    cursor = tick(history, RotationCursor(), platform, minimum=4).cursor
    result = tick(history, cursor, platform, minimum=4, now=T0 + WEEK)
    assert [(d.class_name, d.available) for d in result.deficits] == [("luge", 3)]  # stacking dice: 4 = minimum


def test_one_deficit_has_one_run_key_and_a_further_loss_a_new_one(history):
    videos = ids(4)
    publish(history, {"luge": videos})
    platform = ScriptedPlatform()
    platform.answers[videos[0]] = DownloadError(REMOVED)
    cursor = tick(history, RotationCursor(), platform, minimum=4).cursor
    keys = []
    for week in (1, 2, 3):
        result = tick(history, cursor, platform, minimum=4, now=T0 + week * WEEK)
        cursor = result.cursor
        keys.append([d.run_key for d in result.deficits])
    assert keys[0] == keys[1] == keys[2] and len(keys[0]) == 1  # Dagster launches a run_key once per sensor
    platform.answers[videos[1]] = DownloadError(REMOVED)
    tick(history, cursor, platform, minimum=4, now=T0 + 4 * WEEK)
    again = tick(history, cursor, platform, minimum=4, now=T0 + 5 * WEEK)
    assert [d.available for d in again.deficits] == [2] and again.deficits[0].run_key not in keys[0]


# -- the sensor, through Dagster, against the sandbox -----------------------------------------------------------
CLASSES = list(DEMO_CLASSES[:2])
CONFIG = dict(classes=CLASSES, relevant_per_class=12, distractors_per_class=2, annual_removal_rate=0.1)
PUBLISHED_ON, LATER = datetime.date(2019, 7, 1), datetime.date(2023, 7, 1)  # world seed 0: 6 and 10 clips, 2 and 3 go


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """A release of the world's relevant videos that play on PUBLISHED_ON, and which of them are gone LATER
    (the world's own record: the test may read it, the pipeline never does)."""
    root = tmp_path_factory.mktemp("link_rot")
    world = World(SandboxPlatform(cache_dir=str(root / "world"), **CONFIG).world_config(), root / "world")
    rows, gone = [], {}
    for label in CLASSES:
        for record in world.iter_records(label=label, kind="relevant"):
            if world.availability(record.id, PUBLISHED_ON).available:
                rows.append({"label": label, "youtube_id": record.id, "split": "train"})
                if not world.availability(record.id, LATER).available:
                    gone.setdefault(label, set()).add(record.id)
    release = pd.DataFrame(rows)
    assert all(gone.get(label) for label in CLASSES), "the world must lose videos of both classes"
    survivors = release[~release["youtube_id"].isin(set().union(*gone.values()))]
    fewest = survivors.groupby("label").size().min()
    # every class published at or above the minimum (fewest + 1); afterwards one class is under it, one exactly at
    release = release.drop(survivors.index[survivors.groupby("label").cumcount() > fewest])
    path = root / "edition_release.parquet"
    release.to_parquet(path, index=False)
    return root, release, gone, path


def sensor_resources(root, clock: datetime.date, ledgers: Ledgers | None = None, **policy) -> dict:
    ledgers = ledgers or Ledgers(root=str(root / "ledgers"))
    return {
        "ledgers": ledgers,
        "rate_limit": RateLimit(ledgers=ledgers, budget="sandbox", rate_per_s=200, burst=50),
        "video_platform": SandboxPlatform(cache_dir=str(root / "world"), clock=clock.isoformat(), **CONFIG),
        "policy": CurationPolicy(**{"link_rot_batch": 100, "gone_after_s": 0, **policy}),
    }


def run_tick(instance, resources, cursor=None):
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
        result = link_rot_sensor(context)
        return result, result.cursor


def test_the_sensor_finds_link_rot_confirms_it_and_requests_one_replenishment_per_short_class(sandbox,
                                                                                               ledger_backend):
    root, release, gone, path = sandbox
    ledgers = ledger_backend.ledgers()  # the ledgers every tick of this deployment is given
    available = {label: int((release["label"] == label).sum()) - len(gone[label]) for label in CLASSES}
    short, at_minimum = sorted(CLASSES, key=lambda label: available[label])
    assert available[short] < available[at_minimum]
    minimum = available[at_minimum]
    assert (release.groupby("label").size() >= minimum).all() and available[short] < minimum
    instance = dg.DagsterInstance.ephemeral()

    def tick_on(clock, cursor=None):
        return run_tick(instance, sensor_resources(root, clock, ledgers, minimum_clips_per_class=minimum), cursor)

    skipped, _ = tick_on(LATER)
    assert skipped.skip_reason is not None  # nothing published yet
    instance.report_runless_asset_event(
        dg.AssetMaterialization("edition_release", metadata={"path": dg.MetadataValue.path(str(path))}))

    still_there, cursor = tick_on(PUBLISHED_ON)
    assert still_there.run_requests == [] and RotationCursor.parse(cursor).position == len(release)

    first, cursor = tick_on(LATER, cursor)
    assert first.run_requests == []  # one permanent answer is not enough
    with ledgers.availability_history() as history:
        statuses = history.statuses(release["youtube_id"])
    assert {v for v, s in statuses.items() if s.status == "suspect"} == set().union(*gone.values())

    second, cursor = tick_on(LATER, cursor)
    assert [(r.partition_key, r.tags["kinetics/available_clips"]) for r in second.run_requests] == [
        (class_key(short), str(available[short]))]  # the class exactly at the minimum is not replenished
    third, _ = tick_on(LATER, cursor)
    assert [r.run_key for r in third.run_requests] == [r.run_key for r in second.run_requests]
    with ledgers.availability_history() as history:
        reasons = {s.category for v, s in history.statuses(release["youtube_id"]).items() if s.status == "gone"}
    assert reasons and reasons <= {"removed", "private", "account_terminated", "copyright", "country_blocked",
                                   "sign_in_required", "unavailable"}


def test_clip_availability_probes_the_class_and_records_into_the_same_history(sandbox, tmp_path):
    root, release, gone, path = sandbox
    label = CLASSES[0]

    @dg.asset(name="edition_release")
    def published() -> pd.DataFrame:
        return release

    resources = {**sensor_resources(tmp_path, LATER), "io_manager": LocalParquetIOManager(base_dir=str(tmp_path))}
    instance = dg.DagsterInstance.ephemeral()
    assert dg.materialize([published], resources=resources, instance=instance).success
    for _ in range(2):  # two sweeps: the first answer makes suspects, the second (gone_after 0) confirms
        result = dg.materialize([published, clip_availability], selection=["clip_availability"],
                                partition_key=class_key(label), resources=resources, instance=instance)
    frame = result.output_for_node("clip_availability")
    assert set(frame.loc[frame["status"] == "gone", "youtube_id"]) == gone[label]
    assert set(frame.loc[frame["status"] == "available", "youtube_id"]) == set(
        release.loc[release["label"] == label, "youtube_id"]) - gone[label]
    metadata = result.asset_materializations_for_node("clip_availability")[0].metadata
    assert metadata["gone"].value == len(gone[label]) and metadata["suspect"].value == 0


def test_the_weekly_sweep_requests_every_published_class_once_a_week(sandbox, tmp_path):
    root, release, gone, path = sandbox
    monday = datetime.datetime(2026, 1, 5, 3, tzinfo=datetime.UTC)
    with dg.instance_for_test() as instance:  # a schedule's context needs an instance it can refer to
        instance.report_runless_asset_event(
            dg.AssetMaterialization("edition_release", metadata={"path": dg.MetadataValue.path(str(path))}))
        with dg.build_schedule_context(instance=instance, scheduled_execution_time=monday,
                                       resources={"ledgers": Ledgers(root=str(tmp_path))}) as context:
            requests = weekly_availability_sweep(context)
    assert sorted(r.partition_key for r in requests) == sorted(map(class_key, CLASSES))
    assert len({r.run_key for r in requests}) == len(CLASSES) and all("2026-W02" in r.run_key for r in requests)


def test_a_release_without_the_published_columns_is_refused_by_name(tmp_path, history):
    path = tmp_path / "edition_release.parquet"
    pd.DataFrame({"youtube_id": ids(2)}).to_parquet(path)
    with pytest.raises(ValueError, match=r"edition_release\.parquet lack the column\(s\) label"):
        history.replace_roster("r1", published_pairs(str(path)))
    assert history.release() is None and history.published_count() == 0  # nothing half-loaded
