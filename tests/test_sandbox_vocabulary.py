"""The sandbox's titles are written independently of the pipeline's query tables, so that what query
augmentation gains is measured against them (query_recall), not built into them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kinetics_assets.acquisition.queries import TRANSLATED_LANGUAGES, expand_queries
from resources.sandbox import text
from resources.sandbox.world import World, WorldConfig

PHRASEBOOK = Path(text.__file__).with_name("data") / "phrasebook.json"
MAX_VERBATIM_OVERLAP = 0.10


def contains_verbatim(phrase: str, query: str) -> bool:
    """True if the query's words occur in the phrase as one contiguous run, after case and accent folding
    (the folding the platform's search applies, so a phrase that differs only in case or accents counts)."""
    words, needle = text.search_tokens(phrase), text.search_tokens(query)
    return any(words[i:i + len(needle)] == needle for i in range(len(words) - len(needle) + 1))


def verbatim_overlap(phrasebook: dict, synonyms: bool) -> tuple[float, list[str]]:
    """Share of the sandbox's fr/es/pt title phrases (relevant phrasings of every curated class) that contain
    one of the pipeline's queries for that class and language verbatim, and those phrases.

    The pipeline's phrases are every query ``expand_queries`` builds in the language: the translation table's
    infinitive and gerund and their stop-word removals, plus the curated synonyms when ``synonyms``."""
    total, hits = 0, []
    for label, entry in phrasebook.items():
        if label.startswith("_"):
            continue
        for language in TRANSLATED_LANGUAGES:
            queries = [q.text for q in expand_queries(label, languages=(language,), synonyms=synonyms)]
            for phrase in entry[language]:
                total += 1
                if any(contains_verbatim(phrase, query) for query in queries):
                    hits.append(f"{language}: {phrase}")
    return len(hits) / total, hits


def _phrasebook() -> dict:
    return json.loads(PHRASEBOOK.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("phrase", "query", "expected"),
    [
        ("Empilhando DADOS no copo", "empilhando dados", True),
        ("comment faire une tour de des", "tour de dés", True),  # accents folded, as the search does
        ("dados empilhando", "empilhando dados", False),  # another word order is not verbatim
        ("empilhandodados", "empilhando dados", False),
        ("apilar dadoss", "apilar dados", False),  # whole words only
    ],
)
def test_verbatim_means_the_query_words_in_a_row_after_case_and_accent_folding(phrase, query, expected):
    assert contains_verbatim(phrase, query) is expected


def test_few_sandbox_phrases_contain_the_translation_tables_text_verbatim():
    share, phrases = verbatim_overlap(_phrasebook(), synonyms=False)
    assert share < MAX_VERBATIM_OVERLAP, f"{share:.1%} of fr/es/pt phrases contain a translation query: {phrases}"


def test_european_and_brazilian_portuguese_both_appear_for_every_curated_class():
    """pt-PT says 'a empilhar' (a + infinitive) where pt-BR says 'empilhando': a gerund query misses one."""
    european = re.compile(r"(^|\s)a [a-zçãõáéíóúâê]+(ar|er|ir)\b")
    brazilian = re.compile(r"\b\w+(ando|endo|indo)\b")
    for label, entry in _phrasebook().items():
        if label.startswith("_"):
            continue
        assert any(european.search(p) for p in entry["pt"]), f"{label}: no European Portuguese phrase"
        assert any(brazilian.search(p) for p in entry["pt"]), f"{label}: no Brazilian Portuguese phrase"


def test_titles_are_roughened_as_uploads_are_hashtags_and_dropped_accents():
    phrase = "colhendo maçãs no pomar"
    titles = [text.title_and_description(phrase, "pt", 2020, (i / 200, 0.0, 0.0))[0] for i in range(200)]
    unaccented = [t for t in titles if t == text.strip_accents(t)]
    hashtagged = [t for t in titles if t.endswith(" #colhendomacasnopomar")]
    assert 0.1 < len(unaccented) / len(titles) < 0.3 and 0.05 < len(hashtagged) / len(titles) < 0.25
    assert all(text.search_tokens(phrase) == text.search_tokens(t)[:4] for t in unaccented + hashtagged)


def test_world_titles_carry_the_roughening(tmp_path):
    world = World(WorldConfig(seed=5, classes=("washing hair",), relevant_per_class=60, distractors_per_class=0,
                              max_duration=12.0), tmp_path)
    titles = [world.metadata(r.id).title for r in world.iter_records(kind="relevant")]
    assert any(re.search(r" #\w+$", t) for t in titles)
