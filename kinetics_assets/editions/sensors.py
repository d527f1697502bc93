"""The link-rot loop: a sensor that rotates through every published video and re-runs the classes it finds short.

Each tick re-probes the suspects whose confirmation is due (one permanent answer at least `gone_after` old), then
the next clips of the rotation, at most `CurationPolicy.link_rot_batch` videos through the shared rate budget
and within `TICK_BUDGET_S` (Dagster kills a tick after 60 s). Answers go to the availability history (SQLite,
survives restarts); the cursor holds only where the rotation is: the release it walks, the last position probed,
and the date its current sweep began. A class whose clips still available (not declared gone) fall below the
minimum gets a RunRequest for its partition of the replenishment job, keyed by class, release and count, so one
deficit launches one run however many ticks see it; a further loss is a new deficit and a new run.

Which clips are published is the latest `edition_release` materialization: its value's (label, youtube_id)
pairs are loaded into the history's roster once per release, in chunks, so a tick reads only its batch.
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace

import dagster as dg
import pyarrow.parquet as pq

from jobs import REPLENISH_JOB, availability_sweep_job
from kinetics_assets.acquisition.failures import BreakerPolicy, RetryPolicy
from kinetics_assets.editions.history import AvailabilityHistory
from kinetics_assets.editions.probe import Probed, platform_check, probe_videos
from kinetics_assets.materialized import stored_file
from kinetics_assets.partitions import class_key
from kinetics_assets.policy import CurationPolicy
from resources.ledgers import Ledgers
from resources.rate_limit import RateLimit
from resources.token_bucket import Bucket
from resources.video_platform import VideoPlatform

PUBLISHED_ASSET = dg.AssetKey("edition_release")
TICK_BUDGET_S = 40.0  # of Dagster's 60 s sensor timeout: leaves room to record and return
ROSTER_CHUNK = 50_000
# A tick probes once: transient answers wait for the next sweep, and a session-level one ends the tick at once.
TICK_RETRY = RetryPolicy(attempts=1)
TICK_BREAKER = BreakerPolicy(backoffs=0)


@dataclass(frozen=True)
class RotationCursor:
    """Where the rotation is: `position` is the last published clip probed in the sweep begun on `sweep`."""

    release: str | None = None
    position: int = 0
    sweep: str | None = None

    @classmethod
    def parse(cls, text: str | None) -> RotationCursor:
        if not text:
            return cls()
        try:
            return cls(**json.loads(text))
        except (TypeError, ValueError) as err:
            raise ValueError(f"link_rot_sensor cursor {text!r} is not a rotation cursor: {err}") from None

    def dump(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


@dataclass(frozen=True)
class Deficit:
    """A class of `release` with `available` clips left, under the minimum."""

    class_name: str
    available: int
    release: str

    @property
    def run_key(self) -> str:
        return f"link-rot:{class_key(self.class_name)}:{self.release}:{self.available}"


@dataclass(frozen=True)
class Tick:
    cursor: RotationCursor
    probed: Probed
    deficits: list[Deficit]


def _last_position_probed(cursor: RotationCursor, clips, answered: set[str]) -> int:
    """The rotation moves past the clips whose video was answered (a refused session answers nothing), up to the
    first one that was not."""
    position = cursor.position
    for clip in clips:
        if clip.youtube_id not in answered:
            break
        position = clip.position
    return position


def link_rot_tick(
    history: AvailabilityHistory,
    cursor: RotationCursor,
    release: str,
    check: Callable[[str], None],
    *,
    now: datetime.datetime,
    batch: int,
    minimum: int,
    gone_after: datetime.timedelta,
    keep_going: Callable[[], bool] = lambda: True,
) -> Tick:
    """One tick over the history's roster of `release`: probe, record, move the cursor, list the deficits."""
    today = now.date().isoformat()
    if cursor.release != release:
        cursor = RotationCursor(release, 0, today)  # a new release: a new rotation from its first clip
    elif cursor.position >= history.published_count():
        cursor = replace(cursor, position=0, sweep=today)
    suspects = history.due_suspects(now, gone_after, batch)
    clips = history.published_after(cursor.position, batch - len(suspects)) if len(suspects) < batch else []
    probed = probe_videos([*suspects, *(clip.youtube_id for clip in clips)], check, history,
                          gone_after=gone_after, retry=TICK_RETRY, breaker=TICK_BREAKER, now=lambda: now,
                          keep_going=keep_going)
    answered = {answer.youtube_id for answer in probed.answers if answer.answer != "session"}
    cursor = replace(cursor, position=_last_position_probed(cursor, clips, answered))
    deficits = [Deficit(name, count, release) for name, count in sorted(history.available_clips().items())
                if count < minimum]
    return Tick(cursor, probed, deficits)


def published_pairs(path: str) -> Iterator[list[tuple[str, str]]]:
    """The (label, youtube_id) pairs of a release's parquet value, in chunks: never the whole file in memory."""
    values = pq.ParquetFile(stored_file(path))
    missing = {"label", "youtube_id"} - set(values.schema_arrow.names)
    if missing:
        raise ValueError(f"published clips {path} lack the column(s) {', '.join(sorted(missing))}")
    for chunk in values.iter_batches(batch_size=ROSTER_CHUNK, columns=["label", "youtube_id"]):
        yield list(zip(chunk.column("label").to_pylist(), chunk.column("youtube_id").to_pylist(), strict=True))


def sync_published(instance: dg.DagsterInstance, history: AvailabilityHistory) -> str | None:
    """The latest release's id (its materialization's storage id), its clips loaded into the roster if new."""
    records = instance.fetch_materializations(PUBLISHED_ASSET, limit=1).records
    if not records:
        return None
    record = records[0]
    release = str(record.storage_id)
    if history.release() != release:
        path = record.asset_materialization.metadata.get("path")
        if path is None:
            raise ValueError(f"{PUBLISHED_ASSET.to_user_string()} materialization {release} (run {record.run_id}) "
                             "has no 'path' metadata, so its published clips cannot be read")
        history.replace_roster(release, published_pairs(path.value))
    return release


def _within_budget(bucket: Bucket, deadline: float) -> Callable[[], bool]:
    """Whether the next video's requests (up to two) can be had before the tick's deadline."""
    return lambda: time.monotonic() + max(0.0, 2 - bucket.available()) / bucket.rate_per_s < deadline


@dg.sensor(job_name=REPLENISH_JOB, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def link_rot_sensor(
    context: dg.SensorEvaluationContext,
    ledgers: Ledgers,
    rate_limit: RateLimit,
    video_platform: VideoPlatform,
    policy: CurationPolicy,
):
    """Probes a batch of published videos per tick and replenishes each class link-rot takes under the minimum."""
    with ledgers.availability_history() as history:
        release = sync_published(context.instance, history)
        if release is None:
            return dg.SensorResult(skip_reason="no release published yet: no clip to watch")
        bucket = rate_limit.bucket()
        tick = link_rot_tick(
            history, RotationCursor.parse(context.cursor), release, platform_check(video_platform, bucket.acquire),
            now=datetime.datetime.now(datetime.UTC), batch=policy.link_rot_batch,
            minimum=policy.minimum_clips_per_class, gone_after=datetime.timedelta(seconds=policy.gone_after_s),
            keep_going=_within_budget(bucket, time.monotonic() + TICK_BUDGET_S),
        )
        total = history.published_count()
    if tick.probed.refused is not None:
        context.log.warning(f"link-rot tick stopped early: {tick.probed.refused}")
    gone = sum(status.status == "gone" for status in tick.probed.statuses.values())
    summary = (f"probed {len(tick.probed.answers)} video(s), {gone} gone; sweep of {tick.cursor.sweep} at clip "
               f"{tick.cursor.position} of {total}; {len(tick.deficits)} class(es) under the minimum")
    context.log.info(summary)
    requests = [dg.RunRequest(run_key=d.run_key, partition_key=class_key(d.class_name),
                              tags={"kinetics/available_clips": str(d.available)}) for d in tick.deficits]
    return dg.SensorResult(run_requests=requests, cursor=tick.cursor.dump(), skip_reason=None if requests else summary)


@dg.schedule(cron_schedule="0 3 * * 1", job=availability_sweep_job, default_status=dg.DefaultScheduleStatus.RUNNING)
def weekly_availability_sweep(context: dg.ScheduleEvaluationContext, ledgers: Ledgers):
    """Every Monday, `clip_availability` for every published class: the whole release probed once a week."""
    with ledgers.availability_history() as history:
        classes = sorted(history.available_clips()) if sync_published(context.instance, history) else []
    if not classes:
        return dg.SkipReason("no release published yet: nothing to sweep")
    week = context.scheduled_execution_time.strftime("%G-W%V")
    return [dg.RunRequest(run_key=f"sweep:{week}:{class_key(name)}", partition_key=class_key(name))
            for name in classes]
