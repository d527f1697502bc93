"""Titles, descriptions and channel names for sandbox videos, in English, French, Spanish and Portuguese.

Curated classes (data/phrasebook.json) get hand-written phrasings, written without the pipeline's query tables
(regional variants, slang, typos, other word orders), so that what query augmentation gains is measured, not built
in. Other classes get English gerund/infinitive variants (lemminflect). Titles are then roughened as uploads are:
accents dropped, hashtags, English tags in other languages. Every choice is driven by uniforms in [0, 1) that the
caller draws from the world's seeded generator, so text is deterministic.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from lemminflect import getLemma

DATA_DIR = Path(__file__).with_name("data")
LANGUAGES = ("en", "fr", "es", "pt")

# How a relevant video's uploader phrased the action, with shares for curated / English-only classes.
CURATED_PHRASINGS = {"en_gerund": 0.34, "en_infinitive": 0.12, "en_synonym": 0.12,
                     "fr": 0.12, "es": 0.13, "pt": 0.14, "untitled": 0.03}
ENGLISH_PHRASINGS = {"en_gerund": 0.67, "en_infinitive": 0.30, "untitled": 0.03}

_TITLE_TEMPLATES = {
    "en": ("{P}", "{P}", "{P} - {adj}!", "{P} ({year})", "{P} with friends", "Watch: {p}", "{P} vlog",
           "{P} #shorts", "{p} lol"),
    "fr": ("{P}", "{P}", "{P} - {adj} !", "{P} ({year})", "{P} en famille", "Vlog : {p}", "{P} #shorts",
           "{P} | tuto", "{P} (eng sub)", "{p} mdr"),
    "es": ("{P}", "{P}", "{P} - ¡{adj}!", "{P} ({year})", "{P} con amigos", "Vlog: {p}", "{P} #shorts",
           "{P} | tutorial", "{P} (english subs)", "{p} jajaja"),
    "pt": ("{P}", "{P}", "{P} - {adj}!", "{P} ({year})", "{P} com amigos", "Vlog: {p}", "{P} #shorts",
           "{P} | tutorial", "{P} (english subtitles)", "{p} kkkk"),
}
# Share of titles typed without accents (phone keyboards, habit), and of titles ending in a hashtag of the phrase.
UNACCENTED_SHARE = 0.2
HASHTAG_SHARE = 0.15
_ADJECTIVES = {
    "en": ("amazing", "so satisfying", "epic", "insane", "must see"),
    "fr": ("incroyable", "trop bien", "génial", "magnifique"),
    "es": ("increíble", "genial", "impresionante", "brutal"),
    "pt": ("incrível", "sensacional", "demais", "muito top"),
}
_DESCRIPTIONS = {
    "en": ("{P}. Filmed in {year}. Thanks for watching, like and subscribe!", "Just a short clip: {p}.",
           "New video every week. Today: {p}.", ""),
    "fr": ("{P}. Filmé en {year}. Merci d'avoir regardé, abonnez-vous !", "Petite vidéo : {p}.", ""),
    "es": ("{P}. Grabado en {year}. ¡Gracias por ver, suscríbete!", "Un clip corto: {p}.", ""),
    "pt": ("{P}. Gravado em {year}. Obrigado por assistir, inscreva-se!", "Um clipe curto: {p}.", ""),
}
_COMPILATION_TEMPLATES = {
    "en": "Best {p} compilation {year}", "fr": "Compilation {p} {year}",
    "es": "Compilación de {p} {year}", "pt": "Compilação {p} {year}",
}
_REUPLOAD_SUFFIXES = ("", "", " HD", " (reupload)", " - full video", " !!")
_SYLLABLES = ("ka", "lo", "mi", "ra", "ne", "to", "vi", "su", "den", "mar", "zo", "bel", "tri", "qua", "fen", "dra")
_CHANNEL_SUFFIXES = ("TV", "Vlogs", "Official", "Channel", "Studio", "Family", "Life", "Clips", "HD", "")


@dataclass(frozen=True)
class ClassPhrases:
    """Every way uploaders phrase one class, keyed by phrasing name, plus distractor phrases per language."""

    phrasings: dict[str, tuple[str, ...]]
    shares: dict[str, float]
    distractors: dict[str, tuple[str, ...]]


def pick(options: Sequence, u: float):
    """The option a uniform u in [0, 1) selects."""
    return options[min(int(u * len(options)), len(options) - 1)]


def pick_weighted(shares: dict[str, float], u: float) -> str:
    total = sum(shares.values())
    acc = 0.0
    for name, share in shares.items():
        acc += share / total
        if u < acc:
            return name
    return name


@functools.cache
def _phrasebook() -> dict:
    raw = json.loads((DATA_DIR / "phrasebook.json").read_text(encoding="utf-8"))
    return {label: entry for label, entry in raw.items() if not label.startswith("_")}


def curated_classes() -> tuple[str, ...]:
    return tuple(_phrasebook())


def _plain(label: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[()]", " ", label)).strip()


def _infinitive(phrase: str) -> str:
    """'stacking dice' -> 'stack dice': every -ing verb replaced by its lemma."""
    words = []
    for word in phrase.split():
        lemma = getLemma(word, upos="VERB") if word.endswith("ing") else ()
        words.append(lemma[0] if lemma else word)
    return " ".join(words)


@functools.cache
def class_phrases(label: str) -> ClassPhrases:
    entry = _phrasebook().get(label)
    if entry is not None:
        en = entry["en"]
        phrasings = {"en_gerund": tuple(en["gerund"]), "en_infinitive": tuple(en["infinitive"]),
                     "en_synonym": tuple(en["synonyms"]), "untitled": ()}
        phrasings.update({lang: tuple(entry[lang]) for lang in ("fr", "es", "pt")})
        distractors = {lang: tuple(p) for lang, p in entry["distractors"].items()}
        return ClassPhrases(phrasings, CURATED_PHRASINGS, distractors)
    plain = _plain(label)
    infinitive = _infinitive(plain)
    phrasings = {"en_gerund": (plain,), "en_infinitive": (infinitive,) if infinitive != plain else (plain,),
                 "untitled": ()}
    noun = plain.split()[-1]
    distractors = {"en": (f"{plain} explained podcast", f"{noun} review", f"{noun} unboxing",
                          f"best {noun} for beginners")}
    return ClassPhrases(phrasings, ENGLISH_PHRASINGS, distractors)


def phrasing_language(phrasing: str) -> str:
    return phrasing if phrasing in LANGUAGES else "en"


def _fill(template: str, phrase: str, year: int, adjective: str) -> str:
    return template.format(p=phrase, P=phrase[:1].upper() + phrase[1:], year=year, adj=adjective)


def strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize("NFC", "".join(ch for ch in decomposed if not unicodedata.combining(ch)))


def _roughen(title: str, phrase: str, u: float) -> str:
    """Drop the title's accents, or append the phrase as one hashtag (a word no query matches), or neither."""
    if u < UNACCENTED_SHARE:
        return strip_accents(title)
    if u < UNACCENTED_SHARE + HASHTAG_SHARE:
        return f"{title} #{''.join(search_tokens(phrase))}"
    return title


def title_and_description(phrase: str, language: str, year: int, u: Sequence[float]) -> tuple[str, str]:
    """A title and description around `phrase`, in the phrase's language; u holds 3 uniforms."""
    adjective = pick(_ADJECTIVES[language], u[0])
    title = _fill(pick(_TITLE_TEMPLATES[language], u[1]), phrase, year, adjective)
    title = _roughen(title, phrase, (u[0] * 16) % 1.0)  # a fresh uniform from u[0]'s lower digits
    return title, _fill(pick(_DESCRIPTIONS[language], u[2]), phrase, year, adjective)


def untitled_title(upload_date: str, u: float) -> str:
    """What phones name files that get uploaded without a title: unfindable by any text query."""
    return f"VID {upload_date} {int(u * 86400):06d}" if u < 0.5 else f"IMG_{int(u * 9999):04d}"


def compilation_title(phrase: str, language: str, year: int) -> str:
    return _COMPILATION_TEMPLATES[language].format(p=phrase, year=year)


def reupload_title(source_title: str, u: float) -> str:
    return source_title + pick(_REUPLOAD_SUFFIXES, u)


def channel_name(u: Sequence[float]) -> str:
    """A made-up channel name from three uniforms."""
    first = pick(_SYLLABLES, u[0]) + pick(_SYLLABLES, (u[0] * 16) % 1.0)
    second = pick(_SYLLABLES, u[1]).capitalize() + pick(_SYLLABLES, (u[1] * 16) % 1.0)
    suffix = pick(_CHANNEL_SUFFIXES, u[2])
    return " ".join(part for part in (first.capitalize(), second, suffix) if part)


def search_tokens(text: str) -> list[str]:
    """Lower-case, accent-free word tokens: how the platform's search matches queries to titles."""
    return re.findall(r"[^\W_]+", strip_accents(text).casefold())
