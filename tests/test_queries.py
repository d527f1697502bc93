"""Query expansion: literal expansions for real class names, data coverage, CLI output."""

from __future__ import annotations

import csv
import json
import unicodedata

import pytest
import simplemma
import typer
from typer.testing import CliRunner

from kinetics_assets.acquisition import queries as q
from kinetics_assets.acquisition.queries import (
    Query,
    UnknownClassError,
    expand_queries,
    parse_class_name,
    remove_function_words,
    wordnet_synonyms,
)
from kinetics_assets.acquisition.queries_cli import queries as queries_command


def english(class_name: str, **kwargs) -> list[tuple[str, str, str]]:
    return [
        (x.text, x.technique, x.source)
        for x in expand_queries(class_name, languages=("en",), **kwargs)
    ]


# ---------------------------------------------------------------- English forms


def test_gerund_class_gets_infinitive_and_all_four_languages():
    assert expand_queries("stacking dice") == [
        Query("stacking dice", "en", "original", "stacking dice"),
        Query("stack dice", "en", "infinitive", "stacking dice"),
        Query("empiler des dés", "fr", "translation_infinitive", "stacking dice"),
        Query("en empilant des dés", "fr", "translation_gerund", "stacking dice"),
        Query("empiler dés", "fr", "stopwords_removed", "empiler des dés"),
        Query("en empilant dés", "fr", "stopwords_removed", "en empilant des dés"),
        Query("superposer des dés", "fr", "synonym", "empiler des dés"),
        Query("superposer dés", "fr", "stopwords_removed", "superposer des dés"),
        Query("en superposant des dés", "fr", "synonym", "en empilant des dés"),
        Query("en superposant dés", "fr", "stopwords_removed", "en superposant des dés"),
        Query("apilar dados", "es", "translation_infinitive", "stacking dice"),
        Query("apilando dados", "es", "translation_gerund", "stacking dice"),
        Query("amontonar dados", "es", "synonym", "apilar dados"),
        Query("amontonando dados", "es", "synonym", "apilando dados"),
        Query("empilhar dados", "pt", "translation_infinitive", "stacking dice"),
        Query("empilhando dados", "pt", "translation_gerund", "stacking dice"),
        Query("amontoar dados", "pt", "synonym", "empilhar dados"),
        Query("amontoando dados", "pt", "synonym", "empilhando dados"),
    ]


def test_every_language_gets_synonyms_and_the_flag_turns_them_all_off():
    expansion = expand_queries("picking apples")
    synonyms = {x.language for x in expansion if x.technique == "synonym"}
    assert synonyms == {"fr", "es", "pt"}  # WordNet has none for "picking apples"
    assert ("cosechar manzanas", "es", "recoger manzanas") in [
        (x.text, x.language, x.source) for x in expansion if x.technique == "synonym"
    ]
    assert not [
        x for x in expand_queries("picking apples", synonyms=False) if x.technique == "synonym"
    ]


def test_tie_dying_uses_the_curated_exception_not_the_verb_die():
    assert english("tie dying") == [
        ("tie dying", "original", "tie dying"),
        ("tie dye", "infinitive", "tie dying"),
        ("tie dyeing", "gerund", "tie dying"),
    ]


def test_base_form_verb_gets_a_gerund():
    assert english("stack dice") == [
        ("stack dice", "original", "stack dice"),
        ("stacking dice", "gerund", "stack dice"),
    ]
    assert english("squat") == [
        ("squat", "original", "squat"),
        ("squatting", "gerund", "squat"),
    ]


def test_out_of_vocabulary_verb_is_fixed_by_the_exceptions_table():
    # lemminflect's OOV rule would give "headbut"
    assert english("headbutting") == [
        ("headbutting", "original", "headbutting"),
        ("headbutt", "infinitive", "headbutting"),
    ]


@pytest.mark.parametrize(
    ("class_name", "infinitive"),
    [
        ("casting fishing line", "cast fishing line"),  # later -ing words are nouns
        ("getting a piercing", "get a piercing"),
        ("canoeing or kayaking", "canoe or kayak"),  # coordinated verbs
        ("salsa dancing", "salsa dance"),  # activity name ending in a verb
        ("golf putting", "golf putt"),  # curated: lemminflect says "put"
        ("person collecting garbage", None),  # subject first: left alone
        ("metal detecting", None),  # "detect" is no noun: "metal detect" is no name
        ("bowling", None),  # curated: the sport, not "bowl"
    ],
)
def test_only_the_action_verb_is_inflected(class_name, infinitive):
    found = [
        text for text, technique, _ in english(class_name) if technique == "infinitive"
    ]
    assert found == ([infinitive] if infinitive else [])


def test_articles_removed_from_every_form_and_synonym_derived_from_them():
    assert english("decorating the christmas tree") == [
        ("decorating the christmas tree", "original", "decorating the christmas tree"),
        ("decorate the christmas tree", "infinitive", "decorating the christmas tree"),
        (
            "decorating christmas tree",
            "stopwords_removed",
            "decorating the christmas tree",
        ),
        ("decorate christmas tree", "stopwords_removed", "decorate the christmas tree"),
        ("adorning christmas tree", "synonym", "decorating christmas tree"),
        ("adorn christmas tree", "synonym", "decorate christmas tree"),
    ]


def test_any_phrase_works_in_english_even_outside_the_700():
    assert english("decorating the birthday cake", synonyms=False) == [
        ("decorating the birthday cake", "original", "decorating the birthday cake"),
        ("decorate the birthday cake", "infinitive", "decorating the birthday cake"),
        (
            "decorating birthday cake",
            "stopwords_removed",
            "decorating the birthday cake",
        ),
        ("decorate birthday cake", "stopwords_removed", "decorate the birthday cake"),
    ]


def test_context_qualifier_stays_as_plain_words():
    assert english("passing American football (in game)") == [
        (
            "passing american football in game",
            "original",
            "passing American football (in game)",
        ),
        (
            "pass american football in game",
            "infinitive",
            "passing american football in game",
        ),
    ]


def test_exclusion_clause_never_becomes_a_search_word():
    expansion = expand_queries("bouncing ball (not juggling)")
    assert [(x.text, x.technique) for x in expansion if x.language == "en"] == [
        ("bouncing ball", "original"),
        ("bounce ball", "infinitive"),
    ]
    assert not [
        x
        for x in expansion
        if "jongl" in x.text or "malabar" in x.text or "juggl" in x.text
    ]


def test_parse_class_name_splits_context_and_exclusions():
    assert parse_class_name(
        "throwing ball (not baseball or American football)"
    ) == q.ParsedClassName(
        "throwing ball (not baseball or american football)",
        "throwing ball",
        (),
        ("baseball", "american football"),
    )
    assert parse_class_name("punching person (boxing)").context == ("boxing",)


def test_placeholder_possessive_is_a_function_word():
    assert english("massaging person's head") == [
        ("massaging person's head", "original", "massaging person's head"),
        ("massage person's head", "infinitive", "massaging person's head"),
        ("massaging head", "stopwords_removed", "massaging person's head"),
        ("massage head", "stopwords_removed", "massage person's head"),
    ]


def test_class_defining_verbs_are_not_stop_words_and_acronyms_get_no_junk_synonyms():
    assert english("using atm") == [
        ("using atm", "original", "using atm"),
        ("use atm", "infinitive", "using atm"),
        ("employing atm", "synonym", "using atm"),
        ("employ atm", "synonym", "use atm"),
        ("utilizing atm", "synonym", "using atm"),
        ("utilize atm", "synonym", "use atm"),
    ]
    assert remove_function_words("doing the laundry", "en") == "doing laundry"
    assert remove_function_words("making a cake", "en") == "making cake"


def test_named_dance_is_left_alone():
    assert english("shoot dance") == [("shoot dance", "original", "shoot dance")]


def test_sport_name_is_not_inflected_but_the_same_verb_elsewhere_is():
    assert english("curling (sport)") == [
        ("curling sport", "original", "curling (sport)")
    ]
    assert ("curl hair", "infinitive", "curling hair") in english("curling hair")


def test_no_synonyms_inside_phrasal_verbs_particles_or_named_activities():
    assert [
        t for t, technique, _ in english("putting on shoes") if technique == "synonym"
    ] == []
    assert [
        t for t, technique, _ in english("coloring in") if technique == "synonym"
    ] == []
    assert [
        t for t, technique, _ in english("rock climbing") if technique == "synonym"
    ] == []


def test_verb_synonym_takes_the_preposition_its_object_needs():
    synonyms = [
        (text, source)
        for text, technique, source in english("answering questions")
        if technique == "synonym"
    ]
    assert synonyms == [
        ("replying to questions", "answering questions"),
        ("reply to questions", "answer questions"),
    ]


def test_no_english_synonym_leaves_out_a_needed_preposition():
    prepositions = q._synonym_prepositions()
    for name in q.kinetics700_classes():
        for query in expand_queries(name, languages=("en",)):
            words = query.text.split()
            if query.technique != "synonym" or len(words) < 2:
                continue
            verb = q.lemminflect.getLemma(words[0], upos="VERB")[0]
            assert verb not in prepositions or words[1] == prepositions[verb], query


def test_noun_synonym_keeps_plural_and_synonyms_can_be_turned_off():
    assert ("trimming bushes", "synonym", "trimming shrubs") in english(
        "trimming shrubs"
    )
    assert [
        t
        for t, technique, _ in english("trimming shrubs", synonyms=False)
        if technique == "synonym"
    ] == []


def test_wordnet_synonym_filters():
    assert wordnet_synonyms("tv", "n") == ["television"]
    assert "die" not in wordnet_synonyms("dice", "n")  # an inflection, not a synonym
    assert "instal" not in wordnet_synonyms("install", "v")  # a spelling variant
    assert "dog" not in wordnet_synonyms("chase", "v")  # curated blocklist
    assert "interweave" not in wordnet_synonyms("weave", "v")  # 'interweaving basket' is not a phrase
    assert (
        wordnet_synonyms("make", "v") == []
    )  # first sense not dominant: too polysemous


# ---------------------------------------------------------- normalisation, dedup


def test_lowercase_whitespace_and_accents_policy():
    expansion = expand_queries("  Stacking   DICE ", languages=("en", "fr"))
    assert [x.text for x in expansion][:2] == ["stacking dice", "stack dice"]
    assert "empiler des dés" in [x.text for x in expansion]
    assert all(
        x.text == unicodedata.normalize("NFC", x.text).lower() for x in expansion
    )


def test_dedup_keeps_the_most_basic_technique_and_order_is_deterministic():
    expansion = expand_queries("archery")
    assert [(x.text, x.technique) for x in expansion if x.language == "en"] == [
        ("archery", "original")
    ]
    keys = [(x.text, x.language) for x in expansion]
    assert len(keys) == len(set(keys))
    assert expand_queries("archery") == expansion
    assert expand_queries("stacking dice", languages=("pt", "en"))[0].language == "pt"


def test_french_elided_article_is_removed():
    assert remove_function_words("tirer à l'arc", "fr") == "tirer à arc"
    assert (
        remove_function_words("the", "en") == "the"
    )  # never reduce a query to nothing


# ------------------------------------------------------------------------ errors


def test_unknown_class_needs_english_only():
    with pytest.raises(
        UnknownClassError, match=r"'juggling chainsaws'.*translations\.csv"
    ):
        expand_queries("juggling chainsaws")
    assert english("juggling chainsaws", synonyms=False)[1] == (
        "juggle chainsaws",
        "infinitive",
        "juggling chainsaws",
    )


@pytest.mark.parametrize(
    ("name", "languages", "message"),
    [
        ("stacking dice", ("de",), "unsupported languages"),
        ("   ", ("en",), "empty"),
        ("bouncing ball (not juggling", ("en",), "unbalanced"),
        ("(sport)", ("en",), "no action words"),
    ],
)
def test_bad_input_is_rejected_with_the_reason(name, languages, message):
    with pytest.raises(ValueError, match=message):
        expand_queries(name, languages=languages)


def test_bad_translation_row_names_file_and_line(tmp_path, monkeypatch):
    bad = tmp_path / "translations.csv"
    bad.write_text(
        "class,lang,infinitive,gerund\nstacking dice,fr,empiler des dés,en empilant des dés\nflying,fr,voler,en volant\n"
    )
    monkeypatch.setattr(q, "TRANSLATIONS_CSV", bad)
    q.translation_table.cache_clear()
    try:
        with pytest.raises(
            ValueError,
            match=r"translations\.csv:3: 'flying' is not a Kinetics-700 class",
        ):
            q.translation_table()
    finally:
        q.translation_table.cache_clear()


# ------------------------------------------------------------ translation table


def test_translation_table_covers_all_700_classes_in_three_languages():
    table = q.translation_table()
    classes = q.kinetics700_classes()
    assert len(classes) == 700
    expected = {
        (q.normalise(name), lang) for name in classes for lang in ("fr", "es", "pt")
    }
    assert set(table) == expected
    for key, entry in table.items():
        assert entry.infinitive and entry.gerund and entry.infinitive != entry.gerund, (
            key
        )


_GERUND_ENDINGS = {
    "fr": ("ant",),
    "es": ("ando", "endo"),
    "pt": ("ando", "endo", "indo", "ondo"),
}


def _plain(word: str) -> str:
    return "".join(
        c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn"
    )


def _first_gerund(text: str, lang: str) -> tuple[str, str]:
    """The first participle/gerund of a phrase, raw and without accents or clitics."""
    for token in text.replace("'", " ").split():
        token = token.split("-")[0]  # pt "exercitando-se"
        plain = _plain(token)
        if lang == "es" and plain.endswith("ndose"):
            plain = plain[:-2]  # "cepillándose"
        if plain.endswith(_GERUND_ENDINGS[lang]) and len(plain) > 4:
            return token, plain
    raise AssertionError(f"{lang} {text!r}: no gerund/participle")


def _regular_gerunds(infinitive: str, lang: str) -> set[str]:
    """Gerunds the language's regular conjugation patterns build from an infinitive."""
    word = _plain(infinitive)
    if lang == "es" and word.endswith("se"):
        word = word[:-2]  # "lavarse"
    stem, ending = word[:-2], word[-2:]
    if lang == "fr":
        forms = {stem + "ant", stem + "issant"}
        if ending == "er" and stem.endswith("c"):
            forms.add(stem[:-1] + "cant")  # "lancer" -> "lançant" (cedilla stripped)
        if ending == "er" and stem.endswith("g"):
            forms.add(stem + "eant")  # "manger" -> "mangeant"
        if word.endswith("indre"):
            forms.add(word[:-4] + "gnant")  # "peindre" -> "peignant"
        if word.endswith("uire"):
            forms.add(word[:-2] + "sant")  # "cuire" -> "cuisant"
        return forms
    if lang == "es":
        if ending == "ar":
            return {stem + "ando"}
        forms = {stem + "iendo", stem + "yendo"}
        if word.endswith("enir"):
            forms.add(word[:-4] + "inendo")  # "teñir" -> "tiñendo" (tilde stripped)
        return forms
    return {
        stem + {"ar": "ando", "er": "endo", "ir": "indo", "or": "ondo"}.get(ending, "?")
    }


def gerund_matches_infinitive(
    infinitive_text: str, gerund_text: str, lang: str
) -> bool:
    """True if the phrase's gerund is a form of a verb in the infinitive phrase.

    simplemma lemmatises irregular forms ("haciendo" -> "hacer"); the regular
    patterns cover verbs simplemma does not know ("tirant" -> "tirer").
    """
    raw, plain = _first_gerund(gerund_text, lang)
    lemma = _plain(simplemma.lemmatize(raw, lang=lang))
    for word in infinitive_text.replace("'", " ").split():
        word = word.split("-")[0]
        if _plain(word) in (lemma, lemma + "se") or plain in _regular_gerunds(
            word, lang
        ):
            return True
    return False


def test_translated_gerund_is_a_form_of_the_translated_infinitive():
    synonyms = [
        ((name, lang), entry)
        for (name, lang), entries in q.translation_synonyms().items()
        for entry in entries
    ]
    mismatched = [
        (lang, entry.infinitive, entry.gerund)
        for (_, lang), entry in [*q.translation_table().items(), *synonyms]
        if not gerund_matches_infinitive(entry.infinitive, entry.gerund, lang)
    ]
    assert mismatched == []


def test_translation_synonyms_differ_from_the_translation():
    table = q.translation_table()
    for key, entries in q.translation_synonyms().items():
        for entry in entries:
            assert entry.infinitive != table[key].infinitive, key
            assert entry.gerund != table[key].gerund, key


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("stacking dice,de,stapeln,stapelnd", r"translation_synonyms\.csv:2: language 'de'"),
        ("stacking dice,fr,empiler des dés,en empilant des dés", r":2: the synonym repeats the translation"),
        ("stacking dice,fr,superposer des dés,", r":2: empty infinitive or gerund"),
        ("stacking dice,pt,empilhar os dados,empilhando os dados", r":2: .* only in function words"),
    ],
)
def test_bad_translation_synonym_row_names_file_and_line(tmp_path, monkeypatch, row, message):
    bad = tmp_path / "translation_synonyms.csv"
    bad.write_text(f"class,lang,infinitive,gerund\n{row}\n", encoding="utf-8")
    monkeypatch.setattr(q, "TRANSLATION_SYNONYMS_CSV", bad)
    q.translation_synonyms.cache_clear()
    try:
        with pytest.raises(ValueError, match=message):
            q.translation_synonyms()
    finally:
        q.translation_synonyms.cache_clear()


@pytest.mark.parametrize(
    ("infinitive", "gerund", "lang"),
    [
        ("apilar dados", "comiendo dados", "es"),
        ("empiler des dés", "en lançant des dés", "fr"),
        ("empilhar dados", "pulando dados", "pt"),
    ],
)
def test_gerund_check_catches_a_mismatched_row(infinitive, gerund, lang):
    assert not gerund_matches_infinitive(infinitive, gerund, lang)


def test_every_kinetics700_class_expands_in_all_languages():
    for name in q.kinetics700_classes():
        expansion = expand_queries(name)
        assert {x.language for x in expansion} == {"en", "fr", "es", "pt"}, name
        assert (expansion[0].language, expansion[0].technique, expansion[0].source) == (
            "en",
            "original",
            name,
        )


def test_every_query_derives_from_the_label_or_an_earlier_query():
    for name in (
        "tie dying",
        "decorating the christmas tree",
        "using atm",
        "passing American football (in game)",
        "picking apples",  # synonyms in fr/es/pt
    ):
        seen: set[tuple[str, str]] = set()
        for query in expand_queries(name):
            assert query.source == name or (query.source, query.language) in seen, query
            seen.add((query.text, query.language))


def test_curated_data_files_have_their_documented_columns():
    for path, columns in [
        (q.FUNCTION_WORDS_CSV, {"lang", "word", "category"}),
        (q.VERB_FORMS_CSV, {"phrase", "token", "infinitive", "gerund", "reason"}),
        (q.FIXED_NAMES_CSV, {"phrase", "reason"}),
        (q.SYNONYM_BLOCKLIST_CSV, {"word", "synonym", "reason"}),
        (q.SYNONYM_PREPOSITIONS_CSV, {"verb", "preposition", "reason"}),
    ]:
        with path.open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert rows and set(rows[0]) == columns, path
        assert all(
            row["reason" if "reason" in columns else "category"] for row in rows
        ), path


# --------------------------------------------------------------------------- CLI


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command()(queries_command)
    return app


def test_cli_prints_the_expansion_as_json():
    result = CliRunner().invoke(_cli(), ["tie dying", "--lang", "en", "--lang", "es"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed[:3] == [
        {
            "text": "tie dying",
            "language": "en",
            "technique": "original",
            "source": "tie dying",
        },
        {
            "text": "tie dye",
            "language": "en",
            "technique": "infinitive",
            "source": "tie dying",
        },
        {
            "text": "tie dyeing",
            "language": "en",
            "technique": "gerund",
            "source": "tie dying",
        },
    ]
    assert {row["language"] for row in printed} == {"en", "es"}


def test_cli_rejects_an_untranslated_class_with_a_hint():
    result = CliRunner().invoke(_cli(), ["juggling chainsaws"])
    assert result.exit_code == 2
    assert "juggling chainsaws" in result.output and "--lang en" in result.output
