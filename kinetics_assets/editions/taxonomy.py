"""Class lists of the Kinetics editions and the lineage between consecutive editions."""

from __future__ import annotations

from functools import cache

import pandas as pd

from kinetics_assets.data_files import data_path

# Edition name -> shipped class list. Kinetics-700-2020 kept Kinetics-700's classes (the note, section 1).
EDITION_CLASS_FILES = {
    "Kinetics-400": "kinetics400_classes.txt",
    "Kinetics-600": "kinetics600_classes.txt",
    "Kinetics-700": "kinetics700_classes.txt",
    "Kinetics-700-2020": "kinetics700_classes.txt",
}
EDITIONS = tuple(EDITION_CLASS_FILES)


@cache
def load_classes(edition: str) -> tuple[str, ...]:
    """The class names of an edition, in the published order."""
    if edition not in EDITION_CLASS_FILES:
        raise ValueError(f"unknown edition {edition!r}; known: {', '.join(EDITIONS)}")
    lines = data_path(EDITION_CLASS_FILES[edition]).read_text(encoding="utf-8").splitlines()
    classes = tuple(line.strip() for line in lines if line.strip())
    if len(set(classes)) != len(classes):
        raise ValueError(f"class list of {edition} has duplicate names")
    return classes


def lineage(previous: str, current: str) -> pd.DataFrame:
    """How each class fared from ``previous`` to ``current``: kept, added, dropped or renamed_by_case."""
    before, after = load_classes(previous), load_classes(current)
    before_set, after_set = set(before), set(after)
    before_by_lower = {name.lower(): name for name in before}
    after_by_lower = {name.lower(): name for name in after}
    rows = []
    for name in after:
        if name in before_set:
            rows.append((name, name, "kept"))
        elif name.lower() in before_by_lower:
            rows.append((before_by_lower[name.lower()], name, "renamed_by_case"))
        else:
            rows.append((None, name, "added"))
    rows += [
        (name, None, "dropped")
        for name in before
        if name not in after_set and name.lower() not in after_by_lower
    ]
    frame = pd.DataFrame(rows, columns=["previous_name", "class_name", "status"])
    frame.insert(0, "edition", current)
    frame.insert(1, "previous_edition", previous)
    return frame


def taxonomy_table() -> pd.DataFrame:
    """Every edition's classes with their lineage from the edition before (the first edition: all 'added')."""
    first = EDITIONS[0]
    frames = [
        pd.DataFrame(
            {
                "edition": first,
                "previous_edition": None,
                "previous_name": None,
                "class_name": load_classes(first),
                "status": "added",
            }
        )
    ]
    frames += [lineage(prev, cur) for prev, cur in zip(EDITIONS, EDITIONS[1:])]
    return pd.concat(frames, ignore_index=True)
