"""What each query technique adds: the note's claim that "augmenting the query space proved successful", measured.

Recall needs a set of videos known to show the class, and the pipeline may not read the sandbox's ground truth
(nor would it have one on the real platform). The reference set is what the pipeline itself has measured as
positives of the class: the videos of the edition's clips of the class that are still online (labelled and
verified when that edition was made) and the videos the crowd accepted for the class in earlier rounds. Both were
labelled before this round's search ran, so no query of this round decided whether they count.

Caveats, stated where the figures are shown: a real previous edition was itself found by earlier searches (the
sandbox's edition draws relevant videos whatever their title), so the reference set can favour the wordings those
searches used; and each query returns only its top results, so recall also measures how deep a video ranks.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from kinetics_assets.acquisition.queries import LANGUAGES

# The order expand_queries builds each language's queries in (English: original, verb forms, stop words removed,
# synonyms; others: translations, stop words removed, synonyms): each row's cumulative recall adds that technique
# to the rows above it.
TECHNIQUE_ORDER = (
    "original", "infinitive", "gerund", "translation_infinitive", "translation_gerund", "stopwords_removed",
    "synonym",
)
PLAIN_NAME = ("en", "original")
RECALL_COLUMNS = [
    "language", "technique", "queries", "relevant_found", "not_found_by_name", "cumulative_found",
    "cumulative_recall",
]


def known_positives(class_clips: pd.DataFrame, decisions: pd.DataFrame | None) -> set[str]:
    """The class's videos the pipeline has measured as positives: the edition's clips not gone (``class_clips``,
    with its ``availability``) and the videos the crowd accepted (``decisions`` of earlier rounds, or None)."""
    edition = class_clips.loc[class_clips["availability"] != "gone", "youtube_id"]
    if decisions is None:
        return set(edition)
    accepted = decisions.loc[decisions["decision"] == "accepted", "youtube_id"].dropna()
    return set(edition) | set(accepted)


def _row_order(key: tuple[str, str]) -> tuple[int, int]:
    language, technique = key
    return (LANGUAGES.index(language), TECHNIQUE_ORDER.index(technique))


def query_recall(queries: pd.DataFrame, hits: pd.DataFrame, relevant: Iterable[str]) -> pd.DataFrame:
    """Per language and technique, in query-building order: how many of the ``relevant`` videos its queries
    found, how many of those the plain English class name (en/original) did not find, and the recall of this
    technique together with every row above it.

    ``queries``: the class's search queries (text, language, technique), so that a technique whose queries
    found nothing still gets its row; ``hits``: one row per (query, result) as ``search_hits`` returns them.
    With no relevant videos every recall is NaN (nothing to measure against), not 0.
    """
    relevant = set(relevant)
    unknown = {(lang, tech) for lang, tech in zip(queries["language"], queries["technique"])
               if lang not in LANGUAGES or tech not in TECHNIQUE_ORDER}
    if unknown:
        raise ValueError(f"query_recall: unknown language/technique {sorted(unknown)}; "
                         f"known: {LANGUAGES} x {TECHNIQUE_ORDER}")
    relevant_hits = hits[hits["youtube_id"].isin(relevant)]
    found = relevant_hits.groupby(["language", "technique"])["youtube_id"].agg(set).to_dict()
    by_name = found.get(PLAIN_NAME, set())
    counts = queries.groupby(["language", "technique"])["text"].nunique().to_dict()
    rows, cumulative = [], set()
    for key in sorted(counts, key=_row_order):
        ids = found.get(key, set())
        cumulative |= ids
        rows.append({
            "language": key[0], "technique": key[1], "queries": int(counts[key]), "relevant_found": len(ids),
            "not_found_by_name": len(ids - by_name), "cumulative_found": len(cumulative),
            "cumulative_recall": round(len(cumulative) / len(relevant), 3) if relevant else float("nan"),
        })
    return pd.DataFrame(rows, columns=RECALL_COLUMNS)


def recall_by_language(recall: pd.DataFrame) -> dict[str, float]:
    """One line of a ``query_recall`` table: the plain name's recall, then the cumulative recall once each
    language's techniques are added (English forms and synonyms first), e.g. for the demo's summary."""
    if recall.empty:
        return {}
    line = {"plain_name": recall["cumulative_recall"].iloc[0]}
    line.update(recall.groupby("language", sort=False)["cumulative_recall"].last().to_dict())
    return line
