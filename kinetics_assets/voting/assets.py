"""Dagster wiring for crowd voting: tasks out to the crowd, votes in from its inbox, ≥3-yes acceptance, yields."""

from typing import Literal

import dagster as dg
import pandas as pd
from pydantic import Field

from jobs import VOTING_JOB
from kinetics_assets.metadata import table
from kinetics_assets.partitions import CLASS_PARTITIONS, PER_CLASS_BACKFILL, class_key, class_name
from kinetics_assets.voting.aggregate import AcceptanceRule, agreement, decide, rater_quality
from kinetics_assets.voting.inbox import class_vote_files, scan_inbox
from kinetics_assets.voting.tasks import LABEL_STUDIO_CONFIG, build_tasks, label_studio_tasks, tasks_csv
from kinetics_assets.voting.yields import class_yields as yield_table
from kinetics_assets.voting.yields import yields_markdown
from resources.clip_store import ClipStore
from resources.crowd import CrowdInbox
from resources.ledgers import Ledgers
from resources.storage import LocalArtifactStore

GROUP = "voting"
EDITION_FOLDER = "edition"


def _clip_rows(frame: pd.DataFrame, clip_store: ClipStore) -> pd.DataFrame:
    """Fetched clips as the task builder wants them: id, source window and where a rater plays it."""
    done = frame[frame["status"] == "done"]
    return pd.DataFrame(
        {
            "clip_id": done["clip_id"],
            "youtube_id": done["youtube_id"],
            "time_start": done["start"],
            "time_end": done["end"],
            "clip_location": [clip_store.uri(relpath) for relpath in done["relpath"]],
        }
    )


def edition_clips_in_store(clip_store: ClipStore, ledgers: Ledgers) -> pd.DataFrame:
    """Every fetched edition clip of any class (from the clip ledger), labelled by its class folder.

    Gold negatives for one class are other classes' edition clips: known answers that need no ground truth.
    """
    with ledgers.clip_ledger() as ledger:
        entries = [e for e in ledger.entries() if e.status == "done" and e.relpath.startswith(f"{EDITION_FOLDER}/")]
    frame = pd.DataFrame(
        {
            "status": "done",
            "clip_id": [e.clip_id for e in entries],
            "youtube_id": [e.youtube_id for e in entries],
            "start": [e.time_start for e in entries],
            "end": [e.time_end for e in entries],
            "relpath": [e.relpath for e in entries],
        }
    )
    labels = [class_name(relpath.split("/")[1]) for relpath in frame["relpath"]]
    return _clip_rows(frame, clip_store).assign(label=labels)


class TaskSettings(dg.Config):
    gold_share: float = Field(default=0.1, ge=0, le=0.5, description="share of tasks that are gold clips")


@dg.asset(group_name=GROUP, kinds={"pandas"}, partitions_def=CLASS_PARTITIONS, backfill_policy=PER_CLASS_BACKFILL)
def annotation_tasks(
    context: dg.AssetExecutionContext,
    config: TaskSettings,
    candidate_clips: pd.DataFrame,
    retained_clips: pd.DataFrame,
    clip_store: ClipStore,
    crowd_inbox: CrowdInbox,
    artifacts: LocalArtifactStore,
    ledgers: Ledgers,
) -> dg.Output[pd.DataFrame]:
    """"Does this clip show <class>?" for every new candidate clip, with gold clips mixed in; published to the crowd."""
    name = class_name(context.partition_key)
    key = class_key(name)
    own = _clip_rows(retained_clips, clip_store).assign(label=name)
    others = edition_clips_in_store(clip_store, ledgers)
    gold_pool = pd.concat([own, others[others["label"] != name]], ignore_index=True)
    tasks = build_tasks(name, _clip_rows(candidate_clips, clip_store), gold_pool, gold_share=config.gold_share)
    published = crowd_inbox.publish_tasks(f"{key}/tasks.csv", tasks_csv(tasks))
    studio = artifacts.write_bytes(f"voting/{key}/label_studio_tasks.json", label_studio_tasks(tasks))
    artifacts.write_text("voting/label_studio_config.xml", LABEL_STUDIO_CONFIG)
    return dg.Output(
        tasks,
        metadata={
            "class_name": name,
            "tasks": len(tasks),
            "by_kind": table(tasks.groupby("kind").size().rename("tasks").reset_index()),
            "published_csv": dg.MetadataValue.path(str(published)),
            "label_studio_tasks": artifacts.link(studio),
        },
    )


@dg.asset(group_name=GROUP, kinds={"pandas"}, partitions_def=CLASS_PARTITIONS, backfill_policy=PER_CLASS_BACKFILL)
def rater_votes(
    context: dg.AssetExecutionContext, annotation_tasks: pd.DataFrame, crowd_inbox: CrowdInbox, ledgers: Ledgers
) -> dg.Output[pd.DataFrame]:
    """The class's votes from the crowd inbox, imported once per file (checksum ledger), validated row by row."""
    name = class_name(context.partition_key)
    key = class_key(name)
    known = set(annotation_tasks["task_id"])
    ledger = ledgers.vote_ledger()
    entries, skipped = class_vote_files(crowd_inbox.vote_files(), key)
    for path, reason in skipped:
        context.log.warning(f"vote file {path} skipped: {reason}")
    reports = [ledger.import_file(entry.path, crowd_inbox.read_votes(entry.path), known) for entry in entries]
    votes = ledger.votes(known)
    rejected = pd.concat([r.rejected for r in reports], ignore_index=True) if reports else pd.DataFrame()
    files = pd.DataFrame(
        [(r.source_file, r.already_imported, r.votes_added, len(r.rejected)) for r in reports],
        columns=["file", "already_imported", "votes_added", "rejected"],
    )
    return dg.Output(
        votes,
        metadata={
            "class_name": name,
            "votes": len(votes),
            "votes_added": int(files["votes_added"].sum()),
            "files": table(files),
            "rejected_rows": len(rejected),
            "rejected_sample": table(rejected, limit=20),
            "skipped_files": table(pd.DataFrame(skipped, columns=["file", "reason"])),
        },
    )


class AcceptanceSettings(dg.Config):
    method: Literal["threshold", "dawid_skene"] = Field(
        default="threshold", description="threshold: >= min_yes 'yes' votes; dawid_skene: crowd-kit's model"
    )
    min_yes: int = Field(default=3, ge=1, description="'yes' votes that accept a clip (unsure is a vote, not a yes)")
    raters_per_clip: int = Field(default=5, ge=1, description="votes each clip gets before it is settled")
    exclude_flagged_raters: bool = Field(default=True, description="ignore raters whose gold accuracy is too low")


@dg.asset(group_name=GROUP, kinds={"pandas"}, partitions_def=CLASS_PARTITIONS, backfill_policy=PER_CLASS_BACKFILL)
def accepted_clips(
    context: dg.AssetExecutionContext,
    config: AcceptanceSettings,
    annotation_tasks: pd.DataFrame,
    rater_votes: pd.DataFrame,
    candidate_clips: pd.DataFrame,
) -> dg.Output[pd.DataFrame]:
    """Each candidate clip's decision (accepted, rejected, pending) with the clip it refers to."""
    name = class_name(context.partition_key)
    quality = rater_quality(rater_votes, annotation_tasks)
    flagged = set(quality.loc[quality["flagged_spammer"], "rater_id"]) if config.exclude_flagged_raters else set()
    rule = AcceptanceRule(min_yes=config.min_yes, raters_per_clip=config.raters_per_clip)
    decisions = decide(rater_votes, annotation_tasks, config.method, rule, flagged)
    other = "dawid_skene" if config.method == "threshold" else "threshold"
    compared = agreement(decisions, decide(rater_votes, annotation_tasks, other, rule, flagged))
    clips = candidate_clips[candidate_clips["status"] == "done"]
    decisions = decisions.merge(
        clips[["clip_id", "youtube_id", "start", "end", "relpath", "path", "source_width", "source_height"]],
        on="clip_id",
        how="left",
    )
    counts = decisions["decision"].value_counts()
    return dg.Output(
        decisions,
        metadata={
            "class_name": name,
            "method": config.method,
            "accepted": int(counts.get("accepted", 0)),
            "rejected": int(counts.get("rejected", 0)),
            "pending": int(counts.get("pending", 0)),
            f"agreement_with_{other}": round(compared.share_same, 4),
            "agreement_confusion": table(compared.confusion.reset_index()),
            "raters_flagged": len(flagged),
            "rater_quality": table(quality.sort_values("accuracy"), limit=30),
        },
    )


@dg.asset(group_name=GROUP, kinds={"pandas"})
def class_yields(
    accepted_clips: pd.DataFrame, final_clips: pd.DataFrame, artifacts: LocalArtifactStore
) -> dg.Output[pd.DataFrame]:
    """Appendix A: per class, P(voted positive by >= 3 raters) and P(published after dedup and final filtering),
    beside the note's numbers. Feeds the next round's candidate budgets."""
    published = final_clips[final_clips["reason"] == ""].groupby("class_name").size()
    yields = yield_table(accepted_clips, published={name: int(n) for name, n in published.items()})
    artifacts.write_csv("voting/class_yields.csv", yields)
    report = artifacts.write_text("voting/class_yields.md", yields_markdown(yields))
    return dg.Output(
        yields,
        metadata={"classes": len(yields), "yields": table(yields, limit=130), "report": artifacts.link(report)},
    )


@dg.sensor(job_name=VOTING_JOB, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def vote_inbox_sensor(context: dg.SensorEvaluationContext, crowd_inbox: CrowdInbox):
    """Runs the voting assets for exactly the classes whose vote files arrived (never twice for one file)."""
    scan = scan_inbox(crowd_inbox.vote_files(), context.cursor, set(CLASS_PARTITIONS.get_partition_keys()))
    for path, reason in scan.skipped:
        context.log.warning(f"vote file {path} skipped: {reason}")
    context.update_cursor(scan.cursor)
    return [dg.RunRequest(run_key=batch.run_key, partition_key=batch.class_key) for batch in scan.batches]
