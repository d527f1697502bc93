"""query_recall: what each query technique finds of the videos the pipeline already knows show the class."""

from __future__ import annotations

import csv
import math
from datetime import timedelta

import pandas as pd
import pytest

from kinetics_assets.acquisition.candidates import search_hits
from kinetics_assets.acquisition.queries import expand_queries, kinetics700_classes
from kinetics_assets.acquisition.recall import RECALL_COLUMNS, known_positives, query_recall, recall_by_language
from resources.sandbox.edition import PRIVATE_TEST, write_previous_edition
from resources.sandbox.world import World, WorldConfig


def _queries(*rows: tuple[str, str, str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["text", "language", "technique"])


def _hits(*rows: tuple[str, str, str, str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["youtube_id", "query", "language", "technique"])


QUERIES = _queries(
    ("stacking dice", "en", "original"),
    ("stack dice", "en", "infinitive"),
    ("apilar dados", "es", "translation_infinitive"),
    ("amontonar dados", "es", "synonym"),
    ("empilhar dados", "pt", "translation_infinitive"),
    ("empiler des dés", "fr", "translation_infinitive"),
)
HITS = _hits(
    ("A", "stacking dice", "en", "original"),
    ("B", "stacking dice", "en", "original"),
    ("X", "stacking dice", "en", "original"),  # not a known positive: no recall
    ("B", "stack dice", "en", "infinitive"),
    ("C", "stack dice", "en", "infinitive"),
    ("D", "apilar dados", "es", "translation_infinitive"),
    ("C", "apilar dados", "es", "translation_infinitive"),
    ("E", "amontonar dados", "es", "synonym"),
    ("A", "empilhar dados", "pt", "translation_infinitive"),
)
RELEVANT = {"A", "B", "C", "D", "E", "F", "G", "H"}


def test_each_technique_counts_what_the_plain_name_misses_and_the_recall_accumulates_in_build_order():
    table = query_recall(QUERIES, HITS, RELEVANT)
    assert list(table.columns) == RECALL_COLUMNS
    assert list(zip(table["language"], table["technique"])) == [
        ("en", "original"), ("en", "infinitive"), ("fr", "translation_infinitive"),
        ("es", "translation_infinitive"), ("es", "synonym"), ("pt", "translation_infinitive"),
    ]
    rows = table.set_index(["language", "technique"])
    counts = ["relevant_found", "not_found_by_name", "cumulative_found"]
    assert rows.loc[("en", "original"), counts].tolist() == [2, 0, 2]
    assert rows.loc[("en", "infinitive"), counts].tolist() == [2, 1, 3]  # B again, C new
    assert rows.loc[("es", "translation_infinitive"), ["not_found_by_name", "cumulative_found"]].tolist() == [2, 4]
    assert rows.loc[("es", "synonym"), ["not_found_by_name", "cumulative_found"]].tolist() == [1, 5]
    assert rows.loc[("pt", "translation_infinitive"), ["relevant_found", "not_found_by_name"]].tolist() == [1, 0]
    assert table["cumulative_recall"].tolist() == [0.25, 0.375, 0.375, 0.5, 0.625, 0.625]


def test_recall_by_language_reads_the_cumulative_recall_after_each_language():
    line = recall_by_language(query_recall(QUERIES, HITS, RELEVANT))
    assert line == {"plain_name": 0.25, "en": 0.375, "fr": 0.375, "es": 0.625, "pt": 0.625}
    assert list(line) == ["plain_name", "en", "fr", "es", "pt"]
    assert recall_by_language(query_recall(QUERIES.iloc[0:0], HITS, RELEVANT)) == {}


def test_a_technique_that_found_nothing_keeps_its_row_with_zeros():
    row = query_recall(QUERIES, HITS, RELEVANT).set_index(["language", "technique"]).loc[
        ("fr", "translation_infinitive")]
    assert (row["queries"], row["relevant_found"], row["not_found_by_name"]) == (1, 0, 0)


def test_a_video_found_twice_counts_once_and_non_positives_never_count():
    hits = pd.concat([HITS, HITS.iloc[:1]], ignore_index=True)
    table = query_recall(QUERIES, hits, RELEVANT).set_index(["language", "technique"])
    assert table.loc[("en", "original"), "relevant_found"] == 2  # A, B; X is not a known positive


def test_without_known_positives_recall_is_undefined_not_zero():
    table = query_recall(QUERIES, HITS, set())
    assert table["relevant_found"].eq(0).all()
    assert all(math.isnan(r) for r in table["cumulative_recall"])


def test_no_hits_at_all_still_lists_every_technique():
    table = query_recall(QUERIES, HITS.iloc[0:0], RELEVANT)
    assert len(table) == 6 and table["cumulative_recall"].eq(0.0).all()


def test_unknown_technique_is_rejected_with_its_name():
    bad = pd.concat([QUERIES, _queries(("dice", "en", "hashtag"))], ignore_index=True)
    with pytest.raises(ValueError, match="hashtag"):
        query_recall(bad, HITS, RELEVANT)


def test_known_positives_are_live_edition_videos_and_crowd_accepted_ones():
    clips = pd.DataFrame({"youtube_id": ["A", "B", "C"], "availability": ["available", "gone", "unknown"]})
    decisions = pd.DataFrame({"clip_id": ["d", "e", "f", "g"], "youtube_id": ["D", "E", "F", None],
                              "decision": ["accepted", "rejected", "pending", "accepted"]})
    assert known_positives(clips, decisions) == {"A", "C", "D"}
    assert known_positives(clips, None) == {"A", "C"}


def test_the_pipelines_own_queries_all_have_a_place_in_the_order():
    for name in kinetics700_classes()[:50]:
        queries = pd.DataFrame([q.__dict__ for q in expand_queries(name)])
        assert len(query_recall(queries, HITS.iloc[0:0], RELEVANT)) == queries.groupby(
            ["language", "technique"]).ngroups


def test_on_a_sandbox_world_the_augmented_queries_add_edition_videos_the_plain_name_misses(tmp_path):
    """End to end over the sandbox's search, with the previous edition's videos as the known positives (what
    candidate_videos uses): the gain is measured, and it is not total (independent titles)."""
    world = World(WorldConfig(seed=0, classes=("stacking dice", "steering car")), tmp_path / "world")
    write_previous_edition(world, tmp_path / "edition")
    edition: dict[str, set[str]] = {}
    for name in ("train.csv", "validate.csv", PRIVATE_TEST):
        with (tmp_path / "edition" / name).open(encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                edition.setdefault(row["label"], set()).add(row["youtube_id"])
    on = world.config.epoch + timedelta(days=365)

    def search(text: str, count: int) -> list[dict]:
        return [{"id": m.id, "title": m.title, "duration": m.duration} for m in world.search(text, count, on)]

    for label, videos in edition.items():
        queries = pd.DataFrame([q.__dict__ for q in expand_queries(label)])
        table = query_recall(queries, search_hits(queries, search, 50), videos)
        recall = table["cumulative_recall"]
        assert recall.is_monotonic_increasing, label
        assert 0 < recall.iloc[0] < recall.iloc[-1] < 1, table
        assert table.loc[table["language"] != "en", "not_found_by_name"].sum() > 0, table
