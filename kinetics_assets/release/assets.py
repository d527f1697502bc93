"""Dagster wiring for the new edition: fingerprints → duplicate clusters → final clips → splits (guarded by
Great Expectations) → the release in the official format, with its statistics (Tables 1 and 3) and the
retention of every edition over time (Table 2)."""

from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field

from expectations import CLASS_MINIMUM, SUITE_DESCRIPTIONS, SUITE_NAMES
from kinetics_assets.dedup import (
    clip_items,
    decide,
    find_matches,
    fingerprint_table,
    fingerprint_video,
    read_overrides,
    write_cluster_sheets,
    write_overrides_template,
)
from kinetics_assets.editions.assets import checked_statuses, current_rows, gone_videos, video_statuses
from kinetics_assets.editions.statistics import beside_paper as table1_beside_paper
from kinetics_assets.editions.statistics import table1
from kinetics_assets.materialized import latest
from kinetics_assets.metadata import png_markdown, table
from kinetics_assets.partitions import CLASS_PARTITIONS, PER_CLASS_BACKFILL, class_name
from kinetics_assets.policy import CurationPolicy
from kinetics_assets.release.completeness import expected_partitions, missing_partitions
from kinetics_assets.release.geography import beside_paper as table3_beside_paper
from kinetics_assets.release.geography import continent_shares, country_sources
from kinetics_assets.release.retention import beside_paper as table2_beside_paper
from kinetics_assets.release.retention import over_time, retention, retention_plot
from kinetics_assets.release.splits import SplitTargets, assign_splits
from kinetics_assets.release.writer import (
    Parent,
    changed_classes,
    published_end,
    publish_release,
    read_changes,
    read_release,
    releases_of,
    with_stored_clips,
)
from resources.clip_store import ClipStore
from resources.editions import EditionCatalog
from resources.geography import YouTubeDataApi
from resources.ledgers import Ledgers
from resources.rate_limit import RateLimit
from resources.storage import LocalArtifactStore, PartitionTables

GROUP = "release"
DEDUP = "dedup"  # the reviewer's overrides.csv, the cluster sheets and the overrides template
CLIP_COLUMNS = ["item_id", "class_name", "origin", "youtube_id", "path", "height"]


def _fingerprint(name: str, clips: pd.DataFrame, origin: str) -> dg.Output[pd.DataFrame]:
    """Hash ~2 frames per second of every clip (plain, mirrored and cropped views); one row per hashed frame."""
    clips = pd.DataFrame(
        {"item_id": clips["relpath"].str.removesuffix(".mp4"), "class_name": name, "origin": origin,
         "youtube_id": clips["youtube_id"], "path": clips["path"], "height": clips["source_height"]}
    )
    parts = [
        fingerprint_video(Path(row.path)).to_frame(row.item_id).assign(**{c: getattr(row, c) for c in CLIP_COLUMNS[1:]})
        for row in clips.itertuples()
    ]
    frames = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["clip_id", *CLIP_COLUMNS[1:]])
    return dg.Output(frames, metadata={"class_name": name, "clips": len(clips), "hashed_frames": len(frames)})


@dg.asset(group_name=GROUP, kinds={"pandas"}, partitions_def=CLASS_PARTITIONS, backfill_policy=PER_CLASS_BACKFILL)
def retained_fingerprints(context: dg.AssetExecutionContext, retained_clips: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """Fingerprints of the class's surviving edition clips: what new clips must not duplicate."""
    return _fingerprint(class_name(context.partition_key), retained_clips[retained_clips["status"] == "done"], "previous")


@dg.asset(group_name=GROUP, kinds={"pandas"}, partitions_def=CLASS_PARTITIONS, backfill_policy=PER_CLASS_BACKFILL)
def accepted_fingerprints(context: dg.AssetExecutionContext, accepted_clips: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """Fingerprints of the class's newly accepted clips."""
    accepted = accepted_clips[accepted_clips["decision"] == "accepted"]
    return _fingerprint(class_name(context.partition_key), accepted, "new")


@dg.asset(group_name=GROUP, kinds={"pandas"})
def duplicate_clusters(
    retained_fingerprints: PartitionTables, accepted_fingerprints: PartitionTables, artifacts: LocalArtifactStore
) -> dg.Output[pd.DataFrame]:
    """Re-uploads and compilations across all classes and the previous edition, one clip kept per cluster.

    A reviewer edits ``dedup/overrides.csv`` (keep another clip, or split a cluster) after looking at the
    cluster sheets; the next materialization honours it.
    """
    # one class's table read at a time into flat arrays, one row per clip of the clip columns: no concatenated
    # frame, per-clip groups, objects or look-ups (1M clips: 20M rows)
    prints, clips = fingerprint_table(retained_fingerprints + accepted_fingerprints)
    matches = find_matches(prints)
    with artifacts.folder(DEDUP) as dedup:  # what is written here is stored when the block ends
        overrides_path = dedup / "overrides.csv"
        overrides = read_overrides(overrides_path) if overrides_path.exists() else []
        decisions = decide(clip_items(clips), matches, overrides)
        decisions = decisions.merge(clips[["class_name", "origin"]], left_on="clip_id", right_index=True)
        sheets = write_cluster_sheets(
            decisions, {item: Path(clips.at[item, "path"]) for item in decisions["clip_id"]}, dedup / "clusters"
        )
        template = write_overrides_template(decisions, dedup / "overrides_template.csv")
    dropped = decisions[~decisions["keep"].astype(bool)]  # no clusters: an empty object column, not a mask
    return dg.Output(
        decisions,
        metadata={
            "clips_compared": len(prints),
            "confirmed_matches": len(matches),
            "clusters": int(decisions["cluster_id"].nunique()),
            "clips_dropped": len(dropped),
            "overrides_applied": len(overrides),
            "dropped": table(dropped[["clip_id", "class_name", "keeper_id", "reason"]], limit=50),
            "cluster_sheets": artifacts.link(dedup / "clusters"),
            "first_sheet": artifacts.link(sheets[0]) if sheets else "no clusters",
            "overrides_template": artifacts.link(template),
            "overrides_file": artifacts.link(overrides_path),
        },
    )


# Per-class inputs of the cross-class stage, and which classes each must cover.
FINGERPRINTS_OF_EVERY_CLASS = ("retained_fingerprints",)
FINGERPRINTS_OF_SHORT_CLASSES = ("accepted_fingerprints",)


@dg.asset_check(
    asset="duplicate_clusters",
    name="every_expected_class_present",
    blocking=True,
    additional_ins={"class_deficits": dg.AssetIn("class_deficits")},
    description="Every class of the current edition has its surviving clips fingerprinted, and every class under "
                "the minimum has its votes decided; a class missing from either would silently vanish from the "
                "release. Fails naming each missing class and asset; blocks the release.",
)
def every_expected_class_present(
    context: dg.AssetCheckExecutionContext, class_deficits: pd.DataFrame
) -> dg.AssetCheckResult:
    expected = expected_partitions(class_deficits, FINGERPRINTS_OF_EVERY_CLASS, FINGERPRINTS_OF_SHORT_CLASSES)
    materialized = {asset: context.instance.get_materialized_partitions(dg.AssetKey(asset)) for asset in expected}
    missing = missing_partitions(expected, materialized)
    return dg.AssetCheckResult(
        passed=missing.empty,
        description=("every expected class is present" if missing.empty else
                     "missing: " + "; ".join(f"{row.class_name} ({row.asset})" for row in missing.itertuples())),
        metadata={
            "expected": sum(len(classes) for classes in expected.values()),
            "missing": len(missing),
            "missing_classes": table(missing, limit=700),
            "hint": "materialize the missing class partitions (edition_clips or crowd_votes job), then curate again",
        },
    )


class ModelFilter(dg.Config):
    """An optional last rule: drop accepted clips that an I3D checkpoint finds unlike their class. Off by default."""

    checkpoint: str | None = Field(default=None, description="an i3d_checkpoint partition's folder; none: votes only")
    min_score: float = Field(default=0.05, ge=0, le=1,
                             description="lowest mean probability of the clip's class over its windows")


def drop_low_model_scores(new: pd.DataFrame, scores: pd.Series, min_score: float) -> pd.DataFrame:
    """`new` with `model_score` and, for clips still kept whose score is under `min_score`, the reason."""
    new = new.assign(model_score=scores.reindex(new.index))
    low = (new["reason"] == "") & (new["model_score"] < min_score)
    new.loc[low, "reason"] = [f"the I3D checkpoint gives its class p={score:.3f} (< {min_score:g})"
                              for score in new.loc[low, "model_score"]]
    return new


@dg.asset(group_name=GROUP, kinds={"pandas"})
def final_clips(
    accepted_clips: pd.DataFrame, duplicate_clusters: pd.DataFrame, policy: CurationPolicy, clip_store: ClipStore,
    config: ModelFilter,
) -> dg.Output[pd.DataFrame]:
    """New clips that make the edition: accepted, not a duplicate, clearly of the class; each drop has a reason."""
    new = accepted_clips[accepted_clips["decision"] == "accepted"].copy()
    new["item_id"] = new["relpath"].str.removesuffix(".mp4")
    dropped_as_duplicate = duplicate_clusters.loc[~duplicate_clusters["keep"]].set_index("clip_id")["reason"]
    yes_share = new["yes"] / new["votes"]
    new["reason"] = ""
    new.loc[new["item_id"].isin(dropped_as_duplicate.index), "reason"] = new["item_id"].map(dropped_as_duplicate)
    weak = (new["reason"] == "") & (yes_share < policy.min_yes_share)
    new.loc[weak, "reason"] = [f"only {share:.0%} of votes were yes (< {policy.min_yes_share:.0%})" for share in yes_share[weak]]
    repeat = (new["reason"] == "") & new.duplicated(["class_name", "youtube_id"], keep="first")
    new.loc[repeat, "reason"] = "another clip of this class already comes from the same video"
    if config.checkpoint:
        from kinetics_assets.benchmark.run import BenchmarkRun
        from kinetics_assets.benchmark.scoring import ClipScorer

        scorer = ClipScorer(BenchmarkRun.load(Path(config.checkpoint)))
        candidates = new[new["reason"] == ""]
        scores = pd.Series([scorer.clip_score(clip_store.path(row.relpath), row.class_name)
                            for row in candidates.itertuples()], index=candidates.index, dtype=float)
        new = drop_low_model_scores(new, scores, config.min_score)
    kept = new[new["reason"] == ""]
    return dg.Output(
        new,
        metadata={
            "accepted": len(new),
            "published": len(kept),
            "dropped_by_reason": table(new[new["reason"] != ""].groupby("reason").size().rename("clips").reset_index()),
            "published_per_class": table(kept.groupby("class_name").size().rename("clips").reset_index()),
            "model_filter": config.checkpoint or "off (votes only)",
        },
    )


def edition_rules(policy: CurationPolicy, classes: list[str]):
    from expectations.suites import EditionRules  # GX loads only when the checks run

    return EditionRules(
        minimum=policy.minimum_clips_per_class,
        taxonomy=tuple(classes),
        val_target=policy.val_clips_per_class,
        test_target=policy.test_clips_per_class,
        tolerance=policy.split_tolerance,
    )


@dg.asset(group_name=GROUP, kinds={"pandas"})
def edition_splits(
    context: dg.AssetExecutionContext,
    edition_annotations: pd.DataFrame,
    edition_availability: pd.DataFrame,
    retained_clips: pd.DataFrame,
    final_clips: pd.DataFrame,
    editions: EditionCatalog,
    policy: CurationPolicy,
    ledgers: Ledgers,
) -> dg.Output[pd.DataFrame]:
    """The new edition: surviving clips keep their split, new clips fill val and test to the targets.

    Surviving: the edition's clips and the new ones whose video is not gone (by the availability history where
    the link-rot sensor has probed it, else the edition's check): a release after link-rot leaves out what rotted."""
    rows = current_rows(edition_annotations, editions)
    new = final_clips[final_clips["reason"] == ""]
    gone = gone_videos([*rows["youtube_id"], *new["youtube_id"]], checked_statuses(edition_availability), ledgers)
    retained = rows[~rows["youtube_id"].isin(gone)][["label", "youtube_id", "time_start", "time_end", "split"]]
    retained = with_stored_clips(retained, retained_clips[retained_clips["status"] == "done"])
    new = new[~new["youtube_id"].isin(gone)]
    new = pd.DataFrame({"label": new["class_name"], "youtube_id": new["youtube_id"], "time_start": new["start"],
                        "time_end": new["end"].map(published_end), "clip_path": new["path"]})
    targets = SplitTargets(val=policy.val_clips_per_class, test=policy.test_clips_per_class)
    # built on the last value: a rerun with one more clip moves no clip already placed
    earlier = latest(context.instance, context.asset_key)[0]
    splits = assign_splits(retained, new, targets, seed=policy.split_seed, earlier=earlier)
    per_class = splits.groupby(["label", "split"]).size().unstack(fill_value=0).reset_index()
    return dg.Output(
        splits,
        metadata={
            "clips": len(splits),
            "retained": int((splits["origin"] == "retained").sum()),
            "new": int((splits["origin"] == "new").sum()),
            "per_class_and_split": table(per_class, limit=700),
        },
    )



@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(name, asset="edition_splits", blocking=True, additional_deps=["edition_annotations"],
                          description=SUITE_DESCRIPTIONS[name])
        for name in SUITE_NAMES
    ],
    ins={"edition_splits": dg.AssetIn("edition_splits"), "edition_annotations": dg.AssetIn("edition_annotations")},
)
def edition_expectations(
    edition_splits: pd.DataFrame,
    edition_annotations: pd.DataFrame,
    editions: EditionCatalog,
    policy: CurationPolicy,
    artifacts: LocalArtifactStore,
):
    """Great Expectations suites over the new edition; a failure blocks the release and names what failed."""
    classes = sorted(current_rows(edition_annotations, editions)["label"].dropna().unique())
    from expectations.validate import validate_edition  # GX loads only when the checks run

    with artifacts.folder("release/data_docs") as docs:
        validation = validate_edition(edition_splits, edition_rules(policy, classes), docs)
    for name in SUITE_NAMES:
        outcome = validation.suites[name]
        failing = outcome.failing_rows()
        yield dg.AssetCheckResult(
            check_name=name,
            asset_key="edition_splits",
            passed=outcome.success,
            metadata={
                "failing": len(failing),
                "failing_rows": table(failing, limit=100),
                "data_docs": artifacts.link(validation.docs_index),
                **({"classes_below_minimum": dg.MetadataValue.json(validation.classes_below_minimum())}
                   if name == CLASS_MINIMUM else {}),
            },
        )


RELEASES = "releases"


def release_stem(editions: EditionCatalog) -> str:
    """Releases of the replenished edition are named ``{stem}-1``, ``{stem}-2``, ..."""
    return f"{editions.current}-replenished"


@dg.asset(group_name=GROUP, kinds={"pandas"})
def edition_release(
    edition_splits: pd.DataFrame,
    edition_annotations: pd.DataFrame,
    edition_availability: pd.DataFrame,
    editions: EditionCatalog,
    artifacts: LocalArtifactStore,
    ledgers: Ledgers,
) -> dg.Output[pd.DataFrame]:
    """The new edition in the official format (CSVs, private test labels, manifest, notes, clip tree) as a new,
    immutable release beside the earlier ones (``releases/{edition}-replenished-{n}``, its parent named);
    the same content again is the same release. The notes count a parent's clip as lost to link-rot when the
    availability history (or the edition's check) declares its video gone."""
    previous = current_rows(edition_annotations, editions)
    checked = checked_statuses(edition_availability)
    gone = gone_videos(previous["youtube_id"], checked, ledgers)
    classes = tuple(sorted(previous["label"].dropna().unique()))
    with artifacts.folder(RELEASES) as releases:  # on GCS: uploaded, manifest and LATEST last, when it ends
        release = publish_release(
            edition_splits.drop(columns="origin"),
            releases,
            stem=release_stem(editions),
            classes=classes,
            source=Parent(editions.current, previous),
            gone_among=lambda videos: gone_videos(videos, checked, ledgers),
        )
    stats = table1(edition_splits.assign(edition=release.name), release.name)
    before = table1(previous[~previous["youtube_id"].isin(gone)], f"{editions.current} (surviving)")
    paper = table1_beside_paper(stats)
    return dg.Output(
        edition_splits,
        metadata={
            "release": artifacts.link(release.root),
            "release_name": release.name,
            "parent": release.manifest["parent"],
            "new_release": release.created,
            "content_sha256": release.manifest["content_sha256"],
            "manifest": artifacts.link(release.root / "manifest.json"),
            "release_notes": artifacts.link(release.root / "RELEASE_NOTES.md"),
            "changes_per_class": table(changed_classes(read_changes(release)), limit=700),
            "table1": table(pd.concat([table1(previous, editions.current), before, stats], ignore_index=True)),
            "beside_paper": table(paper) if not paper.empty else "the note has no row for this edition",
        },
    )


@dg.asset(group_name=GROUP, kinds={"pandas"})
def edition_geography(
    edition_splits: pd.DataFrame, data_api: YouTubeDataApi, rate_limit: RateLimit
) -> dg.Output[pd.DataFrame]:
    """Table 3: continents the new edition's videos were uploaded from (the Data API's recording location, else
    the channel's country), beside the note's shares; how many clips' countries are unknown beside it."""
    places = data_api.countries(edition_splits["youtube_id"], rate_limit.bucket().acquire).set_index("youtube_id")
    geography = continent_shares(edition_splits["youtube_id"].map(places["country"]))
    shown = table3_beside_paper(geography)
    return dg.Output(
        shown,
        metadata={
            "clips": geography.clips,
            "with_location": round(geography.located_share, 4),
            "table3": table(shown),
            "country_sources": table(country_sources(edition_splits["youtube_id"].map(places["source"]))),
        },
    )


# Where a video's availability is found: the edition's link-rot check, then the published clips' probes.
AVAILABILITY_ASSETS = ("edition_availability", "clip_availability")


def _evidence_time(instance: dg.DagsterInstance, ledgers: Ledgers) -> str:
    """When the newest availability answer was given (UTC): the edition's check or a `clip_availability`
    materialization, or the link-rot sensor's latest answer in the history. The time a retention row stands for."""
    events = instance.get_latest_materialization_events([dg.AssetKey(name) for name in AVAILABILITY_ASSETS])
    times = [pd.Timestamp(event.timestamp, unit="s", tz="UTC") for event in events.values() if event is not None]
    with ledgers.availability_history() as history:
        probed = history.last_answer_at()
    times += [pd.Timestamp(probed)] if probed is not None else []
    if not times:
        raise ValueError(f"this instance records no materialization of {' or '.join(AVAILABILITY_ASSETS)} and the "
                         "availability history no answer: run the link-rot check (kinetics_main job) first")
    return max(times).isoformat(timespec="microseconds")  # two checks, two times


@dg.asset(group_name=GROUP, kinds={"pandas"}, deps=["edition_release"])
def retention_table(
    context: dg.AssetExecutionContext,
    edition_annotations: pd.DataFrame,
    edition_availability: pd.DataFrame,
    editions: EditionCatalog,
    artifacts: LocalArtifactStore,
    ledgers: Ledgers,
) -> dg.Output[pd.DataFrame]:
    """Table 2: per edition (the replenished one and each release) and split, the clips it was published with
    and how many are still available, at every availability check so far, beside the note's Table 2.

    A video's status comes from the availability history where the link-rot sensor has probed it, else from the
    edition's link-rot check; earlier rows are kept from this asset's previous value."""
    source = current_rows(edition_annotations, editions)
    releases = releases_of(artifacts.path(RELEASES), release_stem(editions))
    clips = pd.concat([source, *(read_release(r).assign(edition=r.name) for r in releases)], ignore_index=True)
    statuses = video_statuses(clips["youtube_id"], checked_statuses(edition_availability), ledgers)
    now = retention(clips, statuses, _evidence_time(context.instance, ledgers))
    history_rows = over_time(latest(context.instance, context.asset_key)[0], now)
    return dg.Output(
        history_rows,
        metadata={
            "as_of": now["as_of"].iloc[0],
            "editions": len(releases) + 1,
            "table2": table(table2_beside_paper(now)),
            "over_time": table(history_rows, limit=200),
            "retention_over_time": png_markdown(retention_plot(history_rows), "retention over time"),
        },
    )
