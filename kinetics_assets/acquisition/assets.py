"""Dagster wiring for acquisition: deficits → queries → candidate videos, per class."""

import dagster as dg
import pandas as pd

from kinetics_assets.acquisition.candidates import (
    merge_candidates,
    search_hits,
    select_candidates,
    technique_contributions,
)
from kinetics_assets.acquisition.deficits import class_deficits as compute_deficits
from kinetics_assets.acquisition.deficits import paper_yield_priors
from kinetics_assets.acquisition.queries import expand_queries
from kinetics_assets.editions.statistics import clips_per_class
from kinetics_assets.metadata import table
from kinetics_assets.partitions import CLASS_PARTITIONS, PER_CLASS_BACKFILL, class_name
from kinetics_assets.policy import CurationPolicy
from resources.editions import EditionCatalog
from resources.video_platform import VideoPlatform

GROUP = "acquisition"
PLATFORM_POOL = "video_platform"  # per-platform concurrency: set the pool's limit in dagster.yaml
# Search and download talk to the platform: a failed attempt is retried with backoff and jitter.
PLATFORM_RETRY = dg.RetryPolicy(max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.FULL)


@dg.asset(group_name=GROUP, kinds={"pandas"})
def class_deficits(
    edition_annotations: pd.DataFrame, editions: EditionCatalog, policy: CurationPolicy
) -> dg.Output[pd.DataFrame]:
    """Per class of the current edition: clips vs the minimum, and how many candidates to fetch for the deficit."""
    current = edition_annotations[edition_annotations["edition"] == editions.current]
    counts = clips_per_class(current).set_index("class_name")["all"]
    deficits = compute_deficits(
        counts,
        policy.minimum_clips_per_class,
        priors=paper_yield_priors(),
        default_yield=policy.default_yield,
        safety_factor=policy.safety_factor,
        cap=policy.max_candidates_per_class,
    )
    short = deficits[deficits["deficit"] > 0]
    return dg.Output(
        deficits,
        metadata={
            "edition": editions.current,
            "minimum": policy.minimum_clips_per_class,
            "classes": len(deficits),
            "classes_below_minimum": len(short),
            "clips_missing": int(short["deficit"].sum()),
            "candidate_budget": int(short["candidate_budget"].sum()),
            "below_minimum": table(short, limit=200),
        },
    )


@dg.asset(group_name=GROUP, kinds={"pandas"}, partitions_def=CLASS_PARTITIONS, backfill_policy=PER_CLASS_BACKFILL)
def search_queries(context: dg.AssetExecutionContext) -> dg.Output[pd.DataFrame]:
    """The class's text queries in en/fr/es/pt, each with the technique that produced it (its lineage)."""
    name = class_name(context.partition_key)
    queries = pd.DataFrame([query.__dict__ for query in expand_queries(name)])
    by_technique = queries.groupby(["language", "technique"]).size().rename("queries").reset_index()
    return dg.Output(
        queries,
        metadata={
            "class_name": name,
            "queries": len(queries),
            "by_language_and_technique": table(by_technique),
            "all_queries": table(queries, limit=100),
        },
    )


def _search_function(platform: VideoPlatform):
    ydl = platform.youtube_dl(extract_flat="in_playlist")

    def search(text: str, count: int) -> list[dict]:
        info = ydl.extract_info(platform.search_url(text, count), download=False)
        return list(info.get("entries") or [])

    return search


@dg.asset(
    group_name=GROUP,
    kinds={"pandas"},
    partitions_def=CLASS_PARTITIONS,
    backfill_policy=PER_CLASS_BACKFILL,
    pool=PLATFORM_POOL,
    retry_policy=PLATFORM_RETRY,
)
def candidate_videos(
    context: dg.AssetExecutionContext,
    search_queries: pd.DataFrame,
    class_clips: pd.DataFrame,
    class_deficits: pd.DataFrame,
    video_platform: VideoPlatform,
    policy: CurationPolicy,
) -> dg.Output[pd.DataFrame]:
    """Videos the queries found, merged and ranked, minus those already used or unusable, up to the budget."""
    name = class_name(context.partition_key)
    deficit = class_deficits[class_deficits["class_name"] == name]
    budget = int(deficit["candidate_budget"].iloc[0]) if len(deficit) else 0
    hits = search_hits(search_queries, _search_function(video_platform), policy.results_per_query)
    kept, dropped = select_candidates(
        merge_candidates(hits),
        in_edition=set(class_clips["youtube_id"]),
        rejected_before=set(),
        min_duration_s=policy.min_source_seconds,
        budget=budget,
    )
    contributions = technique_contributions(hits, kept)
    by_original = set(hits.loc[hits["technique"] == "original", "youtube_id"])
    return dg.Output(
        kept,
        metadata={
            "class_name": name,
            "budget": budget,
            "candidates": len(kept),
            "search_hits": len(hits),
            "unique_videos_found": int(hits["youtube_id"].nunique()),
            "found_by_class_name": len(by_original),
            "found_only_by_augmented_queries": len(set(hits["youtube_id"]) - by_original),
            "by_technique": table(contributions),
            "dropped_by_reason": table(dropped.groupby("reason").size().rename("videos").reset_index()),
            "example_titles": dg.MetadataValue.md("\n".join(f"- {t}" for t in kept["title"].head(8))),
        },
    )
