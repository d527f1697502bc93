"""Which classes the release must hear from, and which it did not.

Per-class assets are materialized only for the classes that needed them, so the cross-class stages read
"the partitions materialized so far". A class whose voting run failed would then simply be absent from dedup and
the release, its clips silently lost. The edition says which classes must be present: every class of the current
edition has its surviving clips fingerprinted, and every class under the minimum has its votes decided.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from kinetics_assets.partitions import class_key

MISSING_COLUMNS = ["class_name", "asset", "why_expected"]
EXPECTED_ALWAYS = "the class is in the current edition"
EXPECTED_IF_SHORT = "the class is under the minimum, so it was replenished and voted on"


def expected_partitions(class_deficits: pd.DataFrame, every_class: tuple[str, ...],
                        short_classes: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """asset -> {class name: why it is expected}, from the deficits table of the current edition."""
    classes = sorted(class_deficits["class_name"])
    # Surviving clips under the minimum, not a deficit left: pending votes can close a deficit before they arrive.
    short = sorted(class_deficits.loc[class_deficits["clips"] < class_deficits["minimum"], "class_name"])
    expected: dict[str, dict[str, str]] = {}
    for asset in every_class:
        expected[asset] = dict.fromkeys(classes, EXPECTED_ALWAYS)
    for asset in short_classes:
        expected[asset] = dict.fromkeys(short, EXPECTED_IF_SHORT)
    return expected


def missing_partitions(expected: Mapping[str, Mapping[str, str]],
                       materialized: Mapping[str, set[str]]) -> pd.DataFrame:
    """One row per (class, asset) that is expected but has no materialized partition."""
    rows = [
        (name, asset, why)
        for asset, classes in expected.items()
        for name, why in classes.items()
        if class_key(name) not in materialized.get(asset, set())
    ]
    return pd.DataFrame(rows, columns=MISSING_COLUMNS).sort_values(["class_name", "asset"], ignore_index=True)
