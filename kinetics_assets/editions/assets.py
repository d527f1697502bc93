"""Dagster wiring for editions: the taxonomy, the imported annotations, Table 1 and per-class slices."""

import threading
import time
from collections.abc import Iterable

import dagster as dg
import pandas as pd

from kinetics_assets.acquisition.failures import RetryPolicy
from kinetics_assets.editions.annotations import import_annotations
from kinetics_assets.editions.availability import check_availability
from kinetics_assets.editions.plots import clips_per_class_histogram
from kinetics_assets.editions.statistics import beside_paper, clips_per_class, table1
from kinetics_assets.editions.taxonomy import taxonomy_table
from kinetics_assets.metadata import png_markdown, table
from kinetics_assets.partitions import CLASS_PARTITIONS, PER_CLASS_BACKFILL, class_name
from kinetics_assets.session_retry import retry_step_if_session_refused
from resources.editions import EditionCatalog
from resources.ledgers import Ledgers
from resources.rate_limit import RateLimit
from resources.storage import LocalArtifactStore
from resources.video_platform import VideoPlatform

GROUP = "editions"


@dg.asset(group_name=GROUP, kinds={"pandas"})
def class_taxonomy() -> dg.Output[pd.DataFrame]:
    """Class lists of Kinetics-400/600/700/700-2020 and how each class fared from one edition to the next."""
    frame = taxonomy_table()
    summary = frame.groupby(["edition", "status"]).size().unstack(fill_value=0).reset_index()
    changes = frame[frame["status"].isin(["renamed_by_case", "dropped"])]
    return dg.Output(
        frame,
        metadata={
            "classes_per_edition": table(frame.groupby("edition").size().rename("classes").reset_index()),
            "lineage": table(summary),
            "renamed_or_dropped": table(changes, limit=100),
        },
    )


@dg.asset(
    group_name=GROUP,
    kinds={"pandas"},
    check_specs=[dg.AssetCheckSpec(
        "all_rows_valid", asset="edition_annotations",
        description="Every row of every catalogued edition's files passed validation. Warns, never blocks: the "
        "rejected rows are counted by reason here and listed in editions/<edition>/rejected_rows.csv.")],
)
def edition_annotations(context: dg.AssetExecutionContext, editions: EditionCatalog, artifacts: LocalArtifactStore):
    """Every catalogued edition's annotation rows, validated row by row; rejected rows are reported with reasons."""
    accepted, rejected, notes, duplicates = [], [], [], 0
    for edition in editions.editions:
        result = import_annotations(editions.files_of(edition), edition.taxonomy)
        accepted.append(result.rows.assign(edition=edition.name, taxonomy=edition.taxonomy))
        rejected.append(result.rejected.assign(edition=edition.name))
        artifacts.write_csv(f"editions/{edition.name}/rejected_rows.csv", result.rejected)
        notes += result.notes
        duplicates += result.duplicates_collapsed
        context.log.info(
            f"{edition.name}: {len(result.rows)} rows accepted, {len(result.rejected)} rejected, "
            f"{result.duplicates_collapsed} duplicates collapsed"
        )
    rows, rejections = pd.concat(accepted, ignore_index=True), pd.concat(rejected, ignore_index=True)
    by_reason = rejections.groupby(["edition", "reason"]).size().rename("rows").reset_index()
    yield dg.Output(
        rows,
        metadata={
            "editions": dg.MetadataValue.json({e.name: e.files for e in editions.editions}),
            "current_edition": editions.current,
            "accepted_rows": len(rows),
            "rejected_rows": len(rejections),
            "duplicates_collapsed": duplicates,
            "notes": dg.MetadataValue.json(notes),
            "rows_per_split": table(rows.groupby(["edition", "split"]).size().rename("rows").reset_index()),
            "rejected_sample": table(rejections, limit=20),
        },
    )
    yield dg.AssetCheckResult(
        check_name="all_rows_valid",
        passed=rejections.empty,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"rejected_rows": len(rejections), "by_reason": table(by_reason)},
    )


@dg.asset(group_name=GROUP, kinds={"pandas"})
def class_statistics(edition_annotations: pd.DataFrame, artifacts: LocalArtifactStore) -> dg.Output[pd.DataFrame]:
    """The note's Table 1 for every imported edition: classes and average/min/max clips per class, per split."""
    editions = list(dict.fromkeys(edition_annotations["edition"]))
    stats = pd.concat(
        [table1(edition_annotations[edition_annotations["edition"] == e], e) for e in editions], ignore_index=True
    )
    paper = beside_paper(stats)
    markdown = f"# Table 1\n\n{stats.to_markdown(index=False)}\n"
    if not paper.empty:
        markdown += f"\n## Beside the note's Table 1 (all splits)\n\n{paper.to_markdown(index=False)}\n"
    report = artifacts.write_text("editions/table1.md", markdown)
    artifacts.write_csv("editions/table1.csv", stats)
    metadata = {
        "table1": table(stats),
        "beside_paper": table(paper) if not paper.empty else "the note has no row for these editions",
        "report": artifacts.link(report),
    }
    for edition in editions:
        counts = clips_per_class(edition_annotations[edition_annotations["edition"] == edition])
        artifacts.write_csv(f"editions/{edition}/clips_per_class.csv", counts)
        histogram = clips_per_class_histogram(counts, edition)
        artifacts.write_bytes(f"editions/{edition}/clips_per_class.png", histogram)
        metadata[f"{edition}: clips per class"] = png_markdown(histogram, f"{edition} clips per class")
        metadata[f"{edition}: rarest classes"] = table(counts.head(10))
    return dg.Output(stats, metadata=metadata)


def current_rows(edition_annotations: pd.DataFrame, editions: EditionCatalog) -> pd.DataFrame:
    return edition_annotations[edition_annotations["edition"] == editions.current]


def video_statuses(videos: Iterable[str], checked: pd.Series, ledgers: Ledgers) -> pd.Series:
    """Each video's availability status: the availability history's (the link-rot sensor's two-answer rule)
    where it has probed the video, else `checked` (youtube_id → status of the edition's one-time link-rot check);
    videos neither knows are absent."""
    videos = list(dict.fromkeys(videos))
    with ledgers.availability_history() as history:
        probed = {video: status.status for video, status in history.statuses(videos).items()}
    known = checked[checked.index.isin(videos)].to_dict()
    return pd.Series({**known, **probed}, dtype=object)


def gone_videos(videos: Iterable[str], checked: pd.Series, ledgers: Ledgers) -> set[str]:
    """Those of `videos` that are gone by `video_statuses` (transient failures and single answers never count)."""
    statuses = video_statuses(videos, checked, ledgers)
    return set(statuses.index[statuses == "gone"])


def checked_statuses(edition_availability: pd.DataFrame) -> pd.Series:
    """youtube_id → status of the edition's link-rot check."""
    return edition_availability.set_index("youtube_id")["status"]


def _metadata_fetcher(platform: VideoPlatform, rate_limit: RateLimit):
    """Fetch a video's public metadata (no media); one YoutubeDL per thread, every request budgeted."""
    local, bucket = threading.local(), rate_limit.bucket()

    def fetch(video_id: str) -> dict:
        if not hasattr(local, "ydl"):
            local.ydl = platform.youtube_dl(extractor_retries=0, retries=0)
        bucket.acquire()
        return local.ydl.extract_info(platform.watch_url(video_id), download=False, process=False)

    return fetch


@dg.asset(group_name=GROUP, kinds={"pandas"}, pool="video_platform")
def edition_availability(
    context: dg.AssetExecutionContext,
    edition_annotations: pd.DataFrame,
    editions: EditionCatalog,
    video_platform: VideoPlatform,
    rate_limit: RateLimit,
) -> dg.Output[pd.DataFrame]:
    """Link-rot check of the current edition: which videos still play, and why the others are gone.

    A session the platform keeps refusing decides nothing: the step is retried later (`session_retry`)."""
    rows = current_rows(edition_annotations, editions)
    with retry_step_if_session_refused(context):
        availability = check_availability(
            rows["youtube_id"], _metadata_fetcher(video_platform, rate_limit),
            retry=RetryPolicy(), concurrency=8, sleep=time.sleep,
        )
    gone = availability[availability["status"] == "gone"]
    lost = rows[rows["youtube_id"].isin(gone["youtube_id"])]
    return dg.Output(
        availability,
        metadata={
            "edition": editions.current,
            "videos": len(availability),
            "available": int((availability["status"] == "available").sum()),
            "gone": len(gone),
            "unknown_after_retries": int((availability["status"] == "unknown").sum()),
            "retained_share": round(1 - len(gone) / max(1, len(availability)), 4),
            "gone_by_reason": table(gone.groupby("category").size().rename("videos").reset_index()),
            "clips_lost_per_class": table(lost.groupby("label").size().rename("clips").reset_index(), limit=100),
        },
    )


@dg.asset(group_name=GROUP, kinds={"pandas"}, partitions_def=CLASS_PARTITIONS, backfill_policy=PER_CLASS_BACKFILL)
def class_clips(
    context: dg.AssetExecutionContext,
    edition_annotations: pd.DataFrame,
    edition_availability: pd.DataFrame,
    editions: EditionCatalog,
) -> dg.Output[pd.DataFrame]:
    """One class's clips in the current edition with their link-rot status: where replenishment starts."""
    name = class_name(context.partition_key)
    rows = current_rows(edition_annotations, editions)
    status = edition_availability.set_index("youtube_id")["status"]
    clips = rows[rows["label"] == name].reset_index(drop=True)
    clips = clips.assign(availability=clips["youtube_id"].map(status).fillna("unknown"))
    per_split = clips[clips["availability"] != "gone"].groupby("split").size().to_dict()
    return dg.Output(
        clips,
        metadata={
            "class_name": name,
            "clips": len(clips),
            "gone": int((clips["availability"] == "gone").sum()),
            **{f"available_{split}": int(count) for split, count in per_split.items()},
            "examples": table(clips[["youtube_id", "time_start", "time_end", "split", "availability"]], limit=5),
        },
    )
