"""Jobs: what `make demo` runs, stage by stage, and what the sensors and backfills launch.

Per-class jobs run one class partition per run (a backfill over many classes is many runs). Their steps form a
chain, so they run in the run's own process: a process per step would only add an import of the code location
(seconds of CPU) to every step of every class.
"""

from __future__ import annotations

import dagster as dg

from kinetics_assets.partitions import CLASS_PARTITIONS, EXAMPLES_PARTITIONS

MAIN_JOB = "kinetics_main"
EDITION_CLIPS_JOB = "edition_clips"
REPLENISH_JOB = "replenish_class"
VOTING_JOB = "crowd_votes"

main_job = dg.define_asset_job(
    MAIN_JOB,
    selection=dg.AssetSelection.assets(
        "class_taxonomy", "edition_annotations", "class_statistics", "edition_availability", "class_deficits"
    ),
    description="Import the editions, their statistics (Table 1), the link-rot check and the classes under the minimum.",
)

edition_clips_job = dg.define_asset_job(
    EDITION_CLIPS_JOB,
    selection=dg.AssetSelection.assets("class_clips", "retained_clips", "retained_fingerprints"),
    partitions_def=CLASS_PARTITIONS,
    executor_def=dg.in_process_executor,
    description="A class's surviving edition clips, fetched (for dedup and as gold clips).",
)

replenish_job = dg.define_asset_job(
    REPLENISH_JOB,
    selection=dg.AssetSelection.assets("search_queries", "candidate_videos", "candidate_clips", "annotation_tasks"),
    partitions_def=CLASS_PARTITIONS,
    executor_def=dg.in_process_executor,
    description="Queries → candidate videos → localized clips → annotation tasks for the crowd, for one class.",
)

voting_job = dg.define_asset_job(
    VOTING_JOB,
    selection=dg.AssetSelection.assets("rater_votes", "accepted_clips", "accepted_fingerprints"),
    partitions_def=CLASS_PARTITIONS,
    executor_def=dg.in_process_executor,
    description="Import a class's new votes and decide its clips (launched by the vote inbox sensor).",
)

AVAILABILITY_SWEEP_JOB = "availability_sweep"
availability_sweep_job = dg.define_asset_job(
    AVAILABILITY_SWEEP_JOB,
    selection=dg.AssetSelection.assets("clip_availability"),
    description="Probe every published clip of a class and record the answers (launched weekly per class).",
)

CURATE_JOB = "curate_edition"
curate_job = dg.define_asset_job(
    CURATE_JOB,
    selection=dg.AssetSelection.assets(
        "class_deficits", "duplicate_clusters", "final_clips", "edition_splits", "edition_release",
        "edition_geography", "class_yields", "retention_table",
    ),
    description="Across classes: each class's state now (deficits after the votes and any link-rot since), dedup, "
    "final filtering, splits (checked by Great Expectations), the release, Table 3, the yields (Appendix A) and "
    "retention over time (Table 2).",
)

BENCHMARK_DATA_JOB, TRAIN_JOB, BENCHMARK_REPORT_JOB = "benchmark_data", "train_i3d", "benchmark_report"
benchmark_data_job = dg.define_asset_job(
    BENCHMARK_DATA_JOB, selection=dg.AssetSelection.assets("benchmark_shards"),
    description="The latest release's clips as frame shards for the I3D benchmark.")
train_job = dg.define_asset_job(
    TRAIN_JOB, selection=dg.AssetSelection.assets("i3d_checkpoint", "i3d_evaluation"),
    partitions_def=EXAMPLES_PARTITIONS, executor_def=dg.in_process_executor,
    description="I3D trained on one training-set size (examples per class) and evaluated on val and test.")
benchmark_report_job = dg.define_asset_job(
    BENCHMARK_REPORT_JOB, selection=dg.AssetSelection.assets("benchmark_table"),
    description="Table 4 and Figure 1 from the evaluations so far.")

JOBS = [main_job, edition_clips_job, replenish_job, voting_job, curate_job, availability_sweep_job,
        benchmark_data_job, train_job, benchmark_report_job]
