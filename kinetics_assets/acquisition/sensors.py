"""Rounds that repeat: when a class's votes are decided and it is still short, the sensor requests its next round.

A round can fall short (the crowd rejects more than the yield predicted, or the search finds fewer untried videos
than the budget). The sensor follows `accepted_clips` materializations (a class's votes decided) past its cursor
(the last storage id seen) and computes each such class's state afresh (`deficits_now`: surviving + accepted +
pending clips, the last search's outcome), so the rounds stop when the class is at the minimum or a search found
no untried video (`supply_exhausted`, recorded with its reason by `candidate_videos`). The run key is the class
and the decision's storage id: a class is never asked twice for one set of votes.
"""

from __future__ import annotations

import dagster as dg

from jobs import REPLENISH_JOB
from kinetics_assets.acquisition.assets import deficits_now
from kinetics_assets.materialized import latest
from kinetics_assets.partitions import class_name
from kinetics_assets.policy import CurationPolicy
from resources.ledgers import Ledgers

DECIDED = dg.AssetKey("accepted_clips")
BATCH = 500  # decisions read per tick; more wait for the next


def decided_since(instance: dg.DagsterInstance, cursor: int | None) -> tuple[dict[str, int], int | None]:
    """{class partition: storage id of its newest decision} after `cursor`, and the new cursor."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=DECIDED, after_storage_id=cursor), limit=BATCH, ascending=True).records
    newest = {record.partition_key: record.storage_id for record in records if record.partition_key}
    return newest, (records[-1].storage_id if records else cursor)


@dg.sensor(job_name=REPLENISH_JOB, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def next_round_sensor(context: dg.SensorEvaluationContext, ledgers: Ledgers, policy: CurationPolicy):
    """After a class's votes are decided: another replenishment round if it is still under the minimum."""
    decided, cursor = decided_since(context.instance, int(context.cursor) if context.cursor else None)
    requests, states = [], []
    for key, storage_id in sorted(decided.items()):
        name = class_name(key)
        clips = latest(context.instance, "class_clips", key)[0]
        if clips is None:
            raise ValueError(f"{name}: its votes are decided but class_clips was never materialized, so its "
                             "edition clips are unknown; materialize the edition_clips job for the class")
        state = deficits_now(context.instance, clips, clips.set_index("youtube_id")["availability"], ledgers,
                             policy).iloc[0]
        states.append(f"{name}: {state['status']}")
        if state["status"] == "short":
            context.log.info(f"{name}: still short after its votes: {state['reason']}")
            requests.append(dg.RunRequest(run_key=f"round:{key}:{storage_id}", partition_key=key,
                                          tags={"kinetics/deficit": str(state["deficit"])}))
    summary = "; ".join(states) or "no votes decided since the last tick"
    return dg.SensorResult(run_requests=requests, cursor=None if cursor is None else str(cursor),
                           skip_reason=None if requests else summary)
