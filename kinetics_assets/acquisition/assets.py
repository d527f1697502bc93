"""Dagster wiring for acquisition: deficits → queries → candidate videos, per class."""

import dataclasses

import dagster as dg
import pandas as pd
from pydantic import Field

from kinetics_assets.acquisition.candidates import (
    candidate_folder,
    earlier_round_videos,
    merge_candidates,
    round_outcome,
    search_hits,
    select_candidates,
    technique_contributions,
    tried_videos,
)
from kinetics_assets.acquisition.deficits import class_deficits as compute_deficits
from kinetics_assets.acquisition.deficits import measured_yields, paper_yield_priors, round_progress
from kinetics_assets.acquisition.clips import ClipFormat, ClipOutcome, ClipRequest, acquire_clips
from kinetics_assets.acquisition.localize import ON_DEMAND, STRATEGIES, make_strategy
from kinetics_assets.acquisition.queries import expand_queries
from kinetics_assets.acquisition.recall import known_positives, query_recall
from kinetics_assets.editions.assets import checked_statuses, current_rows, gone_videos
from kinetics_assets.materialized import latest
from kinetics_assets.metadata import table
from kinetics_assets.partitions import CLASS_PARTITIONS, PER_CLASS_BACKFILL, class_key, class_name
from kinetics_assets.policy import CurationPolicy
from kinetics_assets.session_retry import retry_step_if_session_refused
from resources.clip_store import ClipStore
from resources.editions import EditionCatalog
from resources.ledgers import Ledgers
from resources.rate_limit import RateLimit
from resources.video_platform import VideoPlatform

GROUP = "acquisition"
OUTCOME_COLUMNS = [field.name for field in dataclasses.fields(ClipOutcome)]
TRANSIENT_CHECK = "no_transient_failures_left"
PLATFORM_POOL = "video_platform"  # per-platform concurrency: set the pool's limit in dagster.yaml
# Search and download talk to the platform: a failed attempt is retried with backoff and jitter.
PLATFORM_RETRY = dg.RetryPolicy(max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.FULL)



def deficits_now(instance: dg.DagsterInstance, rows: pd.DataFrame, checked: pd.Series, ledgers: Ledgers,
                 policy: CurationPolicy) -> pd.DataFrame:
    """The deficit table of the classes of `rows` (the edition's clips: label, youtube_id) as things stand now.

    Surviving clips: the rows whose video is not gone (availability history first, else `checked`, the edition's
    link-rot check). Earlier rounds come from the instance: `candidate_clips` and `accepted_clips` (pending and
    accepted clips, less those gone since or dropped at final filtering), `class_yields` (the measured yield,
    used before the note's Appendix A) and `candidate_videos` (whether the last search exhausted the supply)."""
    names = sorted(rows["label"].dropna().unique())
    with ledgers.clip_ledger() as ledger:
        folders = {entry.clip_key.rpartition("/")[0] for entry in ledger.entries()}
    rounds = {name: (latest(instance, "candidate_clips", class_key(name))[0],
                     latest(instance, "accepted_clips", class_key(name))[0])
              for name in names if candidate_folder(name) in folders}  # no round yet: nothing accepted or pending
    accepted_videos = [video for _, decisions in rounds.values() if decisions is not None
                       for video in decisions["youtube_id"].dropna()]
    gone = gone_videos([*rows["youtube_id"], *accepted_videos], checked, ledgers)
    final = latest(instance, "final_clips")[0]
    dropped = set() if final is None else set(
        final.loc[final["reason"] != "", ["class_name", "youtube_id"]].itertuples(index=False, name=None))
    surviving = rows[~rows["youtube_id"].isin(gone)]
    counts = surviving.groupby("label").size().reindex(names, fill_value=0)
    accepted, pending, exhausted = {}, {}, {}
    for name, (fetched, decisions) in rounds.items():
        edition_videos = set(rows.loc[rows["label"] == name, "youtube_id"])
        dropped_here = {video for label, video in dropped if label == name}
        accepted[name], pending[name] = round_progress(fetched, decisions, edition_videos | gone | dropped_here)
        _, search = latest(instance, "candidate_videos", class_key(name))
        if search is not None and "supply_exhausted" in search and search["supply_exhausted"].value:
            exhausted[name] = search["stop_reason"].value
    return compute_deficits(
        counts,
        policy.minimum_clips_per_class,
        accepted=pd.Series(accepted, dtype=int),
        pending=pd.Series(pending, dtype=int),
        history=measured_yields(latest(instance, "class_yields")[0]),
        priors=paper_yield_priors(),
        exhausted=exhausted,
        default_yield=policy.default_yield,
        safety_factor=policy.safety_factor,
        cap=policy.max_candidates_per_class,
    )


@dg.asset(group_name=GROUP, kinds={"pandas"})
def class_deficits(
    context: dg.AssetExecutionContext,
    edition_annotations: pd.DataFrame,
    edition_availability: pd.DataFrame,
    editions: EditionCatalog,
    ledgers: Ledgers,
    policy: CurationPolicy,
) -> dg.Output[pd.DataFrame]:
    """Per class of the current edition: surviving + accepted + pending clips vs the minimum, and the
    candidates to fetch (`deficits_now`).

    Earlier rounds are read from the instance, not from inputs: the assets that record them are downstream of
    this one, so their latest materializations are read like `edition_splits` reads its own previous value."""
    deficits = deficits_now(context.instance, current_rows(edition_annotations, editions),
                            checked_statuses(edition_availability), ledgers, policy)
    short = deficits[deficits["deficit"] > 0]
    due = deficits[deficits["status"] == "short"]
    return dg.Output(
        deficits,
        metadata={
            "edition": editions.current,
            "minimum": policy.minimum_clips_per_class,
            "classes": len(deficits),
            "classes_below_minimum": len(short),
            "classes_due_a_round": len(due),
            "classes_supply_exhausted": int((deficits["status"] == "supply_exhausted").sum()),
            "clips_missing": int(short["deficit"].sum()),
            "candidate_budget": int(due["candidate_budget"].sum()),
            "budgets_from_history": int((short["yield_source"] == "history").sum()),
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


def _search_function(platform: VideoPlatform, rate_limit: RateLimit):
    """One platform search per call, each taking a token from the platform's budget first."""
    ydl, bucket = platform.youtube_dl(extract_flat="in_playlist"), rate_limit.bucket()

    def search(text: str, count: int) -> list[dict]:
        bucket.acquire()
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
    deps=["class_deficits"],
)
def candidate_videos(
    context: dg.AssetExecutionContext,
    search_queries: pd.DataFrame,
    class_clips: pd.DataFrame,
    video_platform: VideoPlatform,
    rate_limit: RateLimit,
    ledgers: Ledgers,
    policy: CurationPolicy,
) -> dg.Output[pd.DataFrame]:
    """Videos the queries found, merged and ranked, minus those already used, tried for the class in an
    earlier round or unusable, up to the budget.

    The budget follows `class_deficits`' rule for the class as it stands at this run, not as the last
    `class_deficits` saw it: a round the link-rot sensor launches a year after it counts the clips gone since.
    A search that finds no untried video exhausts the class's supply: recorded with the reason (metadata
    `supply_exhausted`, `stop_reason`, read by the next `class_deficits`), not an error.
    """
    name = class_name(context.partition_key)
    checked = class_clips.set_index("youtube_id")["availability"]
    deficit = deficits_now(context.instance, class_clips, checked, ledgers, policy)
    budget = int(deficit["candidate_budget"].iloc[0]) if len(deficit) else 0
    hits = search_hits(search_queries, _search_function(video_platform, rate_limit), policy.results_per_query)
    decisions, _ = latest(context.instance, "accepted_clips", context.partition_key)
    with ledgers.clip_ledger() as ledger:
        entries = ledger.entries()
    tried = tried_videos(entries, name, () if decisions is None else decisions["youtube_id"].dropna())
    kept, dropped = select_candidates(
        merge_candidates(hits),
        in_edition=set(class_clips["youtube_id"]),  # gone ones too: a removed video cannot come back
        tried_before=tried,
        rejected_before={entry.youtube_id for entry in entries if entry.failed_for_good},
        min_duration_s=policy.min_source_seconds,
        budget=budget,
    )
    exhausted, stop_reason = round_outcome(budget, len(kept))
    contributions = technique_contributions(hits, kept)
    by_original = set(hits.loc[hits["technique"] == "original", "youtube_id"])
    return dg.Output(
        kept,
        metadata={
            "class_name": name,
            "budget": budget,
            "yield_source": str(deficit["yield_source"].iloc[0]) if len(deficit) else "none",
            "candidates": len(kept),
            "supply_exhausted": exhausted,
            "stop_reason": stop_reason,
            "tried_before": len(tried),
            "search_hits": len(hits),
            "unique_videos_found": int(hits["youtube_id"].nunique()),
            "found_by_class_name": len(by_original),
            "found_only_by_augmented_queries": len(set(hits["youtube_id"]) - by_original),
            "by_technique": table(contributions),
            "query_recall": table(query_recall(search_queries, hits, known_positives(class_clips, decisions))),
            "dropped_by_reason": table(dropped.groupby("reason").size().rename("videos").reset_index()),
            "malformed_ids": dg.MetadataValue.json(
                sorted(dropped.loc[dropped["reason"].str.startswith("malformed"), "youtube_id"])),
            "example_titles": dg.MetadataValue.md("\n".join(f"- {t}" for t in kept["title"].head(8))),
        },
    )


class ClipSettings(dg.Config):
    """How candidate clips are localized and encoded."""

    strategy: str = Field(default="motion",
                          description="localization strategy: " + ", ".join(dict.fromkeys([*STRATEGIES, *ON_DEMAND])))
    model_checkpoint: str | None = Field(default=None, description="for strategy model: an i3d_checkpoint "
                                                                   "partition's folder (benchmark/checkpoints/...)")
    short_side: int = Field(default=256, description="stored clips' short side in pixels (never upscaled)")
    concurrency: int = Field(default=4, ge=1, description="clip downloads (encodes) at once within a run")
    lookahead: int = Field(default=1, ge=0, description="requests localized beside the downloads, so that preview "
                                                        "fetches overlap encodes")

    def localizer(self, class_name: str):
        """The configured strategy; `model` scores the class's windows with the named checkpoint."""
        if self.strategy != "model":
            return make_strategy(self.strategy)
        if not self.model_checkpoint:
            raise ValueError("strategy 'model' needs model_checkpoint: an i3d_checkpoint partition's folder")
        return make_strategy("model", checkpoint=self.model_checkpoint, label=class_name)


def fetch_clips(
    name: str,
    requests: list[ClipRequest],
    config: ClipSettings,
    video_platform: VideoPlatform,
    clip_store: ClipStore,
    rate_limit: RateLimit,
    ledgers: Ledgers,
):
    """Fetch clips through the shared ledger; yields the outcome table and the transient-failure check."""
    with ledgers.clip_ledger() as ledger, retry_step_if_session_refused():
        outcomes = acquire_clips(
            video_platform,
            requests,
            clip_store,
            ledger,
            config.localizer(name),
            rate_limit=rate_limit,
            concurrency=config.concurrency,
            lookahead=config.lookahead,
            clip_format=ClipFormat(short_side=config.short_side),
        )
    clips = pd.DataFrame([dataclasses.asdict(outcome) for outcome in outcomes], columns=OUTCOME_COLUMNS)
    clips = clips.assign(class_name=name)
    done = clips[clips["status"] == "done"]
    failures = clips[clips["status"] != "done"]
    by_category = failures.groupby(["status", "category"]).size().rename("clips").reset_index()
    transient = int((clips["status"] == "transient_failure").sum())
    yield dg.Output(
        clips,
        metadata={
            "class_name": name,
            "requested": len(clips),
            "clips": len(done),
            "fetched_this_run": int((~done["skipped"].astype(bool)).sum()),
            "short_sources": int(done["short_source"].fillna(False).astype(bool).sum()),
            "failures_by_category": table(by_category),
            "example_clips": table(done[["clip_id", "start", "end", "frames", "path"]], limit=8),
        },
    )
    yield dg.AssetCheckResult(
        check_name=TRANSIENT_CHECK,
        passed=transient == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"transient_failures": transient, "hint": "materialize again: only these are retried"},
    )


def _clip_asset(name: str):
    """Per-class clip fetching: one run per class, in the platform's pool, checked for transient failures left."""
    return dg.asset(
        name=name,
        group_name=GROUP,
        kinds={"pandas"},
        partitions_def=CLASS_PARTITIONS,
        backfill_policy=PER_CLASS_BACKFILL,
        pool=PLATFORM_POOL,
        check_specs=[dg.AssetCheckSpec(
            TRANSIENT_CHECK, asset=name,
            description="No clip of the class was left with a transient failure (throttled, 5xx, stalled, "
            "truncated). Warns: materialize the class again and only those clips are retried.")],
    )


@_clip_asset("retained_clips")
def retained_clips(
    context: dg.AssetExecutionContext,
    config: ClipSettings,
    class_clips: pd.DataFrame,
    video_platform: VideoPlatform,
    clip_store: ClipStore,
    rate_limit: RateLimit,
    ledgers: Ledgers,
):
    """The media of the class's clips that survived link-rot, at their annotated windows.

    Needed to compare new clips against the edition (deduplication) and as gold clips with known answers.
    """
    name = class_name(context.partition_key)
    alive = class_clips[class_clips["availability"] != "gone"]
    folder = f"edition/{class_key(name)}"
    requests = [
        ClipRequest(row.youtube_id, folder=folder, time_start=row.time_start, time_end=row.time_end)
        for row in alive.itertuples()
    ]
    yield from fetch_clips(name, requests, config, video_platform, clip_store, rate_limit, ledgers)


@_clip_asset("candidate_clips")
def candidate_clips(
    context: dg.AssetExecutionContext,
    config: ClipSettings,
    candidate_videos: pd.DataFrame,
    class_clips: pd.DataFrame,
    video_platform: VideoPlatform,
    clip_store: ClipStore,
    rate_limit: RateLimit,
    ledgers: Ledgers,
):
    """One localized 10-s clip per candidate video, normalized and stored under its official name, beside the
    clips earlier rounds of the class fetched (not yet in the edition): their votes and acceptances carry into
    this round's decisions instead of being replaced by them.

    Reruns use the ledger: finished clips (the earlier rounds' too) and permanent failures are not fetched
    again; only transient failures are retried.
    """
    name = class_name(context.partition_key)
    folder = candidate_folder(name)
    with ledgers.clip_ledger() as ledger:
        earlier = earlier_round_videos(
            ledger.entries(), name, set(class_clips["youtube_id"]) | set(candidate_videos["youtube_id"]))
    context.log.info(f"{name}: {len(earlier)} clips of earlier rounds carried beside {len(candidate_videos)} new")
    requests = [ClipRequest(video_id, folder=folder) for video_id in [*earlier, *candidate_videos["youtube_id"]]]
    yield from fetch_clips(name, requests, config, video_platform, clip_store, rate_limit, ledgers)
