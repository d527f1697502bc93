"""Rounds that repeat: when a class's votes are decided and it is still short, the sensor requests its next round.

A round can fall short (the crowd rejects more than the yield predicted, or the search finds fewer untried videos
than the budget). The class's state is computed afresh (`deficits_now`: surviving + accepted + pending clips, the
last search's outcome), so the rounds stop when the class is at the minimum or a search found no untried video
(`supply_exhausted`, recorded with its reason by `candidate_videos`). One request per voting run (its run id is
the run key): a class is never asked twice for one set of votes.
"""

from __future__ import annotations

import dagster as dg

from jobs import replenish_job, voting_job
from kinetics_assets.acquisition.assets import deficits_now
from kinetics_assets.materialized import latest
from kinetics_assets.partitions import class_name
from kinetics_assets.policy import CurationPolicy
from resources.ledgers import Ledgers


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[voting_job],
    request_job=replenish_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def next_round_sensor(context: dg.RunStatusSensorContext, ledgers: Ledgers, policy: CurationPolicy):
    """After a class's votes are decided: another replenishment round if it is still under the minimum."""
    run = context.dagster_run
    key = run.tags.get("dagster/partition")
    if key is None:
        return dg.SkipReason(f"run {run.run_id} has no class partition")
    name = class_name(key)
    clips = latest(context.instance, "class_clips", key)[0]
    if clips is None:
        return dg.SkipReason(f"{name}: class_clips was never materialized, so its edition clips are unknown")
    state = deficits_now(context.instance, clips, clips.set_index("youtube_id")["availability"], ledgers, policy)
    row = state.iloc[0]
    if row["status"] != "short":
        return dg.SkipReason(f"{name}: {row['status']} ({row['reason']})")
    context.log.info(f"{name}: still short after the votes of run {run.run_id}: {row['reason']}")
    return dg.RunRequest(run_key=f"round:{key}:{run.run_id}", partition_key=key,
                         tags={"kinetics/deficit": str(row["deficit"]), "kinetics/after_votes_of": run.run_id})
