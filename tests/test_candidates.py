"""Merging, ranking and filtering search results into a class's candidate videos."""

import pandas as pd
import pytest

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
from kinetics_assets.acquisition.ledger import LedgerEntry

QUERIES = pd.DataFrame(
    {
        "text": ["stacking dice", "stack dice", "empilhando dados"],
        "language": ["en", "en", "pt"],
        "technique": ["original", "infinitive", "translation_gerund"],
    }
)
RESULTS = {
    "stacking dice": [("AAAAAAAAAAA", 30), ("BBBBBBBBBBB", 40), ("LLLLLLLLLLL", 60)],
    "stack dice": [("BBBBBBBBBBB", 40), ("CCCCCCCCCCC", 1.5), ("EEEEEEEEEEE", 50)],
    "empilhando dados": [("DDDDDDDDDDD", 25), ("BBBBBBBBBBB", 40), ("FFFFFFFFFFF", 45)],
}


def fake_search(text, count):
    return [
        {"id": vid, "title": f"video {vid[0]}", "duration": dur, "live_status": "is_live" if vid[0] == "L" else None}
        for vid, dur in RESULTS[text][:count]
    ]


def test_hits_record_which_query_found_each_video_at_which_position():
    hits = search_hits(QUERIES, fake_search, results_per_query=2)
    assert len(hits) == 6
    row = hits[(hits.youtube_id == "DDDDDDDDDDD")].iloc[0]
    assert (row.query, row.language, row.technique, row.position) == ("empilhando dados", "pt", "translation_gerund", 1)


def test_merge_ranks_by_agreement_then_position():
    merged = merge_candidates(search_hits(QUERIES, fake_search, results_per_query=3))
    assert merged.iloc[0].youtube_id == "BBBBBBBBBBB"
    assert merged.iloc[0].queries_matched == 3
    assert merged.iloc[0].found_by == "empilhando dados|stack dice|stacking dice"
    assert merged.iloc[0].languages == "en|pt"
    assert list(merged.youtube_id[1:4]) == ["AAAAAAAAAAA", "DDDDDDDDDDD", "CCCCCCCCCCC"]  # position, then id


def test_select_drops_used_rejected_short_live_and_over_budget_with_reasons():
    merged = merge_candidates(search_hits(QUERIES, fake_search, results_per_query=3))
    kept, dropped = select_candidates(
        merged, in_edition={"AAAAAAAAAAA"}, tried_before=set(), rejected_before={"DDDDDDDDDDD"}, min_duration_s=2.0,
        budget=2,
    )
    assert list(kept.youtube_id) == ["BBBBBBBBBBB", "EEEEEEEEEEE"]
    reasons = dict(zip(dropped.youtube_id, dropped.reason))
    assert reasons == {
        "AAAAAAAAAAA": "already in the edition for this class",
        "DDDDDDDDDDD": "rejected before",
        "CCCCCCCCCCC": "shorter than 2 s",
        "LLLLLLLLLLL": "live stream",
        "FFFFFFFFFFF": "over the budget of 2",
    }
    assert len(kept) + len(dropped) == len(merged)


def test_contributions_count_candidates_only_one_technique_found():
    hits = search_hits(QUERIES, fake_search, results_per_query=3)
    kept, _ = select_candidates(merge_candidates(hits), in_edition=set(), tried_before=set(), rejected_before=set(),
                          min_duration_s=2, budget=10)
    table = technique_contributions(hits, kept).set_index("technique")
    assert table.loc["translation_gerund", "candidates"] == 3  # D, B, F
    assert table.loc["translation_gerund", "unique"] == 2  # D and F only came from Portuguese
    assert table.loc["original", "unique"] == 1  # A (L is live, not kept)


def test_a_malformed_id_in_search_results_is_dropped_with_its_reason_and_the_rest_kept():
    results = [{"id": "AAAAAAAAAAA", "duration": 30}, {"id": "../etc/pass", "duration": 30},
               {"id": "BBBBBBBBBBBB", "duration": 30}, {"title": "no id at all", "duration": 30}]
    hits = search_hits(QUERIES.head(1), lambda text, count: results, results_per_query=4)
    kept, dropped = select_candidates(merge_candidates(hits), in_edition=set(), tried_before=set(),
                                      rejected_before=set(), min_duration_s=10, budget=10)
    assert list(kept["youtube_id"]) == ["AAAAAAAAAAA"]
    malformed = dropped[dropped["reason"].str.startswith("malformed video id")]
    assert set(malformed["youtube_id"]) == {"../etc/pass", "BBBBBBBBBBBB", ""}


def _entry(clip_key, youtube_id, status, category=None):
    return LedgerEntry(clip_key, None, youtube_id, None, None, None, status, category, None, 1, 1, None, None, None,
                       "2026-01-01T00:00:00", "2026-01-01T00:00:00")


def test_tried_videos_are_the_classes_fetched_and_failed_for_good_ones_plus_decided_clips():
    entries = [
        _entry("candidates/stacking_dice/AAAAAAAAAAA", "AAAAAAAAAAA", "done"),
        _entry("candidates/stacking_dice/BBBBBBBBBBB", "BBBBBBBBBBB", "permanent_failure", "removed"),
        _entry("candidates/stacking_dice/CCCCCCCCCCC", "CCCCCCCCCCC", "transient_failure", "network"),
        _entry("candidates/stacking_dice/DDDDDDDDDDD", "DDDDDDDDDDD", "permanent_failure", "bot_check"),
        _entry("candidates/luge/EEEEEEEEEEE", "EEEEEEEEEEE", "done"),
        _entry("edition/stacking_dice/FFFFFFFFFFF_000001_000011", "FFFFFFFFFFF", "done"),
    ]
    tried = tried_videos(entries, "stacking dice", decided=["GGGGGGGGGGG"])
    # a transient failure and a session-level answer (bot check) are retried; other classes and the edition's
    # own clips are not this class's tries
    assert tried == {"AAAAAAAAAAA", "BBBBBBBBBBB", "GGGGGGGGGGG"}
    assert candidate_folder("stacking dice") == "candidates/stacking_dice"
    # carried into the next round: fetched clips only, not those an edition already holds
    assert earlier_round_videos(entries, "stacking dice", excluded={"AAAAAAAAAAA"}) == []
    assert earlier_round_videos(entries, "luge", excluded=set()) == ["EEEEEEEEEEE"]


def test_videos_tried_before_are_dropped_with_their_reason_and_the_budget_goes_to_untried_ones():
    merged = merge_candidates(search_hits(QUERIES, fake_search, results_per_query=3))
    kept, dropped = select_candidates(merged, in_edition=set(), tried_before={"BBBBBBBBBBB", "AAAAAAAAAAA"},
                                      rejected_before=set(), min_duration_s=2.0, budget=2)
    assert list(kept.youtube_id) == ["DDDDDDDDDDD", "EEEEEEEEEEE"]
    reasons = dict(zip(dropped.youtube_id, dropped.reason))
    assert reasons["BBBBBBBBBBB"] == reasons["AAAAAAAAAAA"] == "tried before for this class"


@pytest.mark.parametrize("budget, kept, exhausted, reason", [
    (0, 0, False, "no candidates needed: the class is at the minimum"),
    (5, 0, True, "candidate supply exhausted: search found no untried usable video"),
    (5, 3, False, "supply short: 3 untried videos for a budget of 5"),
    (5, 5, False, "budget of 5 filled"),
])
def test_a_round_records_why_it_stops(budget, kept, exhausted, reason):
    assert round_outcome(budget, kept) == (exhausted, reason)
