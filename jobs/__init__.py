"""Jobs: the main job (what `make demo` runs) and the per-class job that backfills class partitions."""

from __future__ import annotations

import dagster as dg

from kinetics_assets.partitions import CLASS_PARTITIONS

MAIN_JOB = "kinetics_main"
PER_CLASS_JOB = "per_class"

main_job = dg.define_asset_job(
    MAIN_JOB,
    selection=dg.AssetSelection.assets(
        "class_taxonomy", "edition_annotations", "class_statistics", "edition_availability", "class_deficits"
    ),
    description="Import the editions, compute their statistics (Table 1) and the classes under the minimum.",
)

per_class_job = dg.define_asset_job(
    PER_CLASS_JOB,
    selection=dg.AssetSelection.assets("class_clips", "search_queries", "candidate_videos", "candidate_clips"),
    partitions_def=CLASS_PARTITIONS,
    description="Per-class stages for the selected class partitions.",
)

JOBS = [main_job, per_class_job]
