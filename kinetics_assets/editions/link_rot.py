"""Dagster wiring of the per-class link-rot check of the published release (the weekly sweep runs it per class)."""

import datetime
import time

import dagster as dg
import pandas as pd

from kinetics_assets.acquisition.failures import BreakerPolicy, RetryPolicy
from kinetics_assets.editions.history import STATUSES
from kinetics_assets.editions.probe import Probed, platform_check, probe_videos
from kinetics_assets.metadata import table
from kinetics_assets.partitions import CLASS_PARTITIONS, PER_CLASS_BACKFILL, class_name
from kinetics_assets.policy import CurationPolicy
from kinetics_assets.session_retry import retry_step_if_session_refused
from resources.ledgers import Ledgers
from resources.rate_limit import RateLimit
from resources.video_platform import VideoPlatform

GROUP = "link_rot"


def clip_statuses(clips: pd.DataFrame, probed: Probed) -> pd.DataFrame:
    """One row per published clip: this probe's answer and the video's status as the history now decides it."""
    answers = {answer.youtube_id: answer.answer for answer in probed.answers}
    statuses = probed.statuses
    return clips.assign(
        answer=clips["youtube_id"].map(answers),
        status=[statuses[v].status if v in statuses else "unknown" for v in clips["youtube_id"]],
        category=[statuses[v].category if v in statuses else None for v in clips["youtube_id"]],
        reason=[statuses[v].reason if v in statuses else None for v in clips["youtube_id"]],
    ).reset_index(drop=True)


@dg.asset(group_name=GROUP, kinds={"pandas"}, partitions_def=CLASS_PARTITIONS, backfill_policy=PER_CLASS_BACKFILL,
          pool="video_platform")
def clip_availability(
    context: dg.AssetExecutionContext,
    edition_release: pd.DataFrame,
    video_platform: VideoPlatform,
    rate_limit: RateLimit,
    ledgers: Ledgers,
    policy: CurationPolicy,
) -> dg.Output[pd.DataFrame]:
    """Every published clip of the class probed (oEmbed first, full check when ambiguous), answers kept in the
    availability history; a video is gone after two permanent answers `policy.gone_after_s` apart.

    A session the platform keeps refusing decides nothing: what was probed stays recorded, the step is retried."""
    name = class_name(context.partition_key)
    clips = edition_release.loc[edition_release["label"] == name, ["label", "youtube_id", "split"]]
    with ledgers.availability_history() as history, retry_step_if_session_refused(context):
        probed = probe_videos(
            clips["youtube_id"], platform_check(video_platform, rate_limit.bucket().acquire), history,
            gone_after=datetime.timedelta(seconds=policy.gone_after_s), retry=RetryPolicy(), breaker=BreakerPolicy(),
            sleep=time.sleep,
        )
        if probed.refused is not None:
            raise probed.refused
    frame = clip_statuses(clips, probed)
    gone = frame[frame["status"] == "gone"]
    available = len(frame) - len(gone)
    return dg.Output(
        frame,
        metadata={
            "class_name": name,
            "clips": len(frame),
            **{status: int((frame["status"] == status).sum()) for status in STATUSES},
            "available_clips": available,
            "minimum": policy.minimum_clips_per_class,
            "under_minimum": available < policy.minimum_clips_per_class,
            "gone_by_reason": table(gone.groupby("category").size().rename("clips").reset_index()),
            "examples": table(frame[frame["status"] != "available"], limit=20),
        },
    )
