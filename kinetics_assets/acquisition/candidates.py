"""Candidate videos for a class: run every query through the platform's search, merge, rank and filter.

Ranking rewards agreement: a video that several queries (languages, verb forms, synonyms) find is more likely
to show the action than one a single query found; ties go to the better search position, then the id.
"""

from __future__ import annotations

from typing import Callable, Iterable

import pandas as pd

from kinetics_assets.acquisition.ledger import LedgerEntry
from kinetics_assets.partitions import class_key
from resources.video_platform import VIDEO_ID_RE

# (query text, result count) -> flat search entries as yt-dlp returns them
SearchFunction = Callable[[str, int], list[dict]]

VIDEO_FACTS = ["title", "duration", "channel", "upload_date", "country", "height"]
HIT_COLUMNS = ["youtube_id", *VIDEO_FACTS, "live", "query", "language", "technique", "position"]
CANDIDATE_COLUMNS = [
    "youtube_id", *VIDEO_FACTS, "queries_matched", "best_position", "found_by", "languages", "techniques",
]


def candidate_folder(class_name: str) -> str:
    """The store folder (and ledger key prefix) of a class's candidate clips."""
    return f"candidates/{class_key(class_name)}"


def tried_videos(entries: Iterable[LedgerEntry], class_name: str, decided: Iterable[str] = ()) -> set[str]:
    """Every video a replenishment round of this class already tried: fetched (voted on, voted down or still
    pending) or failed for good, from the clip ledger, plus the videos of the class's decided clips.

    A transient failure is not a try: it is retried when the video is found again.
    """
    prefix = f"{candidate_folder(class_name)}/"
    ledger = {e.youtube_id for e in entries if e.clip_key.startswith(prefix) and (e.status == "done" or e.failed_for_good)}
    return ledger | set(decided)


def earlier_round_videos(entries: Iterable[LedgerEntry], class_name: str, excluded: set[str]) -> list[str]:
    """Videos whose candidate clip an earlier round of the class fetched (by ledger key), minus ``excluded``
    (videos an edition already holds for the class, or this round's own candidates)."""
    prefix = f"{candidate_folder(class_name)}/"
    return [e.youtube_id for e in entries
            if e.clip_key.startswith(prefix) and e.status == "done" and e.youtube_id not in excluded]


def round_outcome(budget: int, kept: int) -> tuple[bool, str]:
    """(supply exhausted, why the round stops where it does): a budget the search cannot fill is a finding
    about the class's supply, not an error."""
    if budget <= 0:
        return False, "no candidates needed: the class is at the minimum"
    if kept == 0:
        return True, "candidate supply exhausted: search found no untried usable video"
    if kept < budget:
        return False, f"supply short: {kept} untried videos for a budget of {budget}"
    return False, f"budget of {budget} filled"


def search_hits(queries: pd.DataFrame, search: SearchFunction, results_per_query: int) -> pd.DataFrame:
    """One row per (query, result): which query found which video, at which position."""
    rows = []
    for query in queries.itertuples(index=False):
        for position, entry in enumerate(search(query.text, results_per_query), start=1):
            rows.append(
                {
                    "youtube_id": str(entry.get("id") or ""),  # malformed ids are dropped with a reason
                    "title": entry.get("title") or "",
                    "duration": entry.get("duration"),
                    "channel": entry.get("channel") or entry.get("uploader") or "",
                    "upload_date": entry.get("upload_date"),
                    "country": entry.get("location"),
                    "height": entry.get("height"),
                    "live": bool(entry.get("is_live")) or entry.get("live_status") in ("is_live", "is_upcoming"),
                    "query": query.text,
                    "language": query.language,
                    "technique": query.technique,
                    "position": position,
                }
            )
    return pd.DataFrame(rows, columns=HIT_COLUMNS)


def _joined(values: Iterable[str]) -> str:
    return "|".join(sorted(set(values)))


def merge_candidates(hits: pd.DataFrame) -> pd.DataFrame:
    """One row per video with every query that found it, ranked by agreement then search position."""
    if hits.empty:
        return pd.DataFrame(columns=CANDIDATE_COLUMNS + ["live"])
    grouped = hits.groupby("youtube_id", sort=False)
    merged = grouped.agg(
        title=("title", "first"),
        duration=("duration", "first"),
        channel=("channel", "first"),
        upload_date=("upload_date", "first"),
        country=("country", "first"),
        height=("height", "first"),
        live=("live", "any"),
        queries_matched=("query", "nunique"),
        best_position=("position", "min"),
        found_by=("query", _joined),
        languages=("language", _joined),
        techniques=("technique", _joined),
    ).reset_index()
    merged = merged.sort_values(
        ["queries_matched", "best_position", "youtube_id"], ascending=[False, True, True]
    ).reset_index(drop=True)
    return merged[CANDIDATE_COLUMNS + ["live"]]


def select_candidates(
    merged: pd.DataFrame,
    *,
    in_edition: set[str],
    tried_before: set[str],
    rejected_before: set[str],
    min_duration_s: float,
    budget: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep up to ``budget`` candidates; return (kept, dropped) with a reason for every dropped video."""
    reasons = pd.Series("", index=merged.index, dtype=object)
    duration = pd.to_numeric(merged["duration"], errors="coerce")
    malformed = ~merged["youtube_id"].map(lambda video_id: bool(VIDEO_ID_RE.fullmatch(video_id)))
    rules = [
        (malformed, "malformed video id: expected 11 characters of [A-Za-z0-9_-]"),
        (merged["youtube_id"].isin(in_edition), "already in the edition for this class"),
        (merged["youtube_id"].isin(tried_before), "tried before for this class"),
        (merged["youtube_id"].isin(rejected_before), "rejected before"),
        (merged["live"].astype(bool), "live stream"),
        (duration.isna(), "unknown duration"),
        (duration < min_duration_s, f"shorter than {min_duration_s:g} s"),
    ]
    for mask, reason in rules:
        reasons = reasons.mask((reasons == "") & mask.fillna(False), reason)
    eligible = merged[reasons == ""]
    kept = eligible.head(budget)
    over_budget = eligible.index.difference(kept.index)
    reasons.loc[over_budget] = f"over the budget of {budget}"
    dropped = merged[reasons != ""].assign(reason=reasons[reasons != ""])
    return kept.drop(columns="live").reset_index(drop=True), dropped.drop(columns="live").reset_index(drop=True)


def technique_contributions(hits: pd.DataFrame, kept: pd.DataFrame) -> pd.DataFrame:
    """Per language/technique: kept candidates it found, and how many of those no other technique found."""
    kept_hits = hits[hits["youtube_id"].isin(kept["youtube_id"])]
    found = kept_hits.groupby(["language", "technique"])["youtube_id"].agg(lambda ids: set(ids))
    rows = []
    for (language, technique), ids in found.items():
        others = kept_hits[(kept_hits["language"] != language) | (kept_hits["technique"] != technique)]
        rows.append(
            {
                "language": language,
                "technique": technique,
                "candidates": len(ids),
                "unique": len(ids - set(others["youtube_id"])),
            }
        )
    return pd.DataFrame(rows, columns=["language", "technique", "candidates", "unique"])
