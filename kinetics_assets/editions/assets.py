"""Dagster wiring for editions: the taxonomy, the imported annotations, Table 1 and per-class slices."""


import dagster as dg
import pandas as pd
from pydantic import Field

from kinetics_assets.data_files import data_path
from kinetics_assets.editions.annotations import import_annotations
from kinetics_assets.editions.plots import clips_per_class_histogram
from kinetics_assets.editions.statistics import beside_paper, clips_per_class, table1
from kinetics_assets.editions.taxonomy import EDITIONS, taxonomy_table
from kinetics_assets.metadata import png_markdown, table
from kinetics_assets.partitions import CLASS_PARTITIONS, class_name
from resources.storage import LocalArtifactStore

GROUP = "editions"


class EditionSource(dg.Config):
    """Which edition the annotation files belong to, and the files themselves."""

    edition: str = Field(default="Kinetics-400", description=f"one of {', '.join(EDITIONS)}")
    files: list[str] = Field(
        default=[str(data_path("kinetics400_val.csv"))],
        description="official annotation CSVs (default: the shipped Kinetics-400 validation file)",
    )


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
    check_specs=[dg.AssetCheckSpec("all_rows_valid", asset="edition_annotations")],
)
def edition_annotations(
    context: dg.AssetExecutionContext, config: EditionSource, artifacts: LocalArtifactStore
):
    """The edition's annotation rows, validated row by row; rejected rows are kept in a report with reasons."""
    result = import_annotations(config.files, config.edition)
    rows = result.rows.assign(edition=config.edition)
    report = artifacts.write_csv(f"editions/{config.edition}/rejected_rows.csv", result.rejected)
    by_reason = result.rejected.groupby("reason").size().rename("rows").reset_index()
    context.log.info(f"{len(rows)} rows accepted, {len(result.rejected)} rejected, {result.duplicates_collapsed} duplicates")
    yield dg.Output(
        rows,
        metadata={
            "edition": config.edition,
            "files": dg.MetadataValue.json(config.files),
            "accepted_rows": len(rows),
            "rejected_rows": len(result.rejected),
            "duplicates_collapsed": result.duplicates_collapsed,
            "notes": dg.MetadataValue.json(result.notes),
            "rows_per_split": table(rows.groupby("split").size().rename("rows").reset_index()),
            "rejected_report": dg.MetadataValue.path(str(report)),
            "rejected_sample": table(result.rejected, limit=20),
        },
    )
    yield dg.AssetCheckResult(
        check_name="all_rows_valid",
        passed=result.rejected.empty,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"rejected_rows": len(result.rejected), "by_reason": table(by_reason)},
    )


@dg.asset(group_name=GROUP, kinds={"pandas"})
def class_statistics(edition_annotations: pd.DataFrame, artifacts: LocalArtifactStore) -> dg.Output[pd.DataFrame]:
    """The note's Table 1 for the imported edition: classes and average/min/max clips per class, per split."""
    editions = edition_annotations["edition"].unique()
    edition = str(editions[0]) if len(editions) else "unknown"
    stats = table1(edition_annotations, edition)
    counts = clips_per_class(edition_annotations)
    paper = beside_paper(stats)
    folder = f"editions/{edition}"
    artifacts.write_csv(f"{folder}/table1.csv", stats)
    artifacts.write_csv(f"{folder}/clips_per_class.csv", counts)
    markdown = f"# Table 1 — {edition}\n\n{stats.to_markdown(index=False)}\n"
    if not paper.empty:
        markdown += f"\n## Beside the note's Table 1 (all splits)\n\n{paper.to_markdown(index=False)}\n"
    report = artifacts.write_text(f"{folder}/table1.md", markdown)
    histogram = clips_per_class_histogram(counts, edition)
    artifacts.write_bytes(f"{folder}/clips_per_class.png", histogram)
    return dg.Output(
        stats,
        metadata={
            "table1": table(stats),
            "beside_paper": table(paper) if not paper.empty else "the note has no row for this edition",
            "rarest_classes": table(counts.head(10)),
            "largest_classes": table(counts.tail(10).iloc[::-1]),
            "clips_per_class": png_markdown(histogram, "clips per class"),
            "report": dg.MetadataValue.path(str(report)),
        },
    )


@dg.asset(group_name=GROUP, kinds={"pandas"}, partitions_def=CLASS_PARTITIONS)
def class_clips(context: dg.AssetExecutionContext, edition_annotations: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """One class's clips in the current edition: the per-class slice that replenishment starts from."""
    name = class_name(context.partition_key)
    clips = edition_annotations[edition_annotations["label"] == name].reset_index(drop=True)
    per_split = clips.groupby("split").size().to_dict()
    return dg.Output(
        clips,
        metadata={
            "class_name": name,
            "clips": len(clips),
            **{f"clips_{split}": int(count) for split, count in per_split.items()},
            "examples": table(clips[["youtube_id", "time_start", "time_end", "split"]], limit=5),
        },
    )
