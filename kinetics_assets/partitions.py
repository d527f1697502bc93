"""Per-class partitions over the 700 Kinetics-700 classes.

Class names carry spaces, parentheses, apostrophes and capitals ("passing American football (in game)").
Partition keys must be safe in Dagster (no ``|,[]``), in file paths and in URLs, and must map back to the
exact class name. The codec keeps ASCII letters, digits and ``-``, writes a space as ``_`` and every other
character as ``%XX`` per UTF-8 byte, so it is invertible for any name, not only the 700 we ship.
"""

from __future__ import annotations

import re
import warnings

import dagster as dg

from kinetics_assets.editions.taxonomy import load_classes

_KEPT = re.compile(r"[A-Za-z0-9-]")
_KEY = re.compile(r"(?:[A-Za-z0-9_-]|%[0-9A-F]{2})+")


def class_key(class_name: str) -> str:
    """The partition key (and path component) of a class name."""
    if not class_name:
        raise ValueError("class name is empty")
    out = []
    for char in class_name:
        if _KEPT.fullmatch(char):
            out.append(char)
        elif char == " ":
            out.append("_")
        else:
            out.extend(f"%{byte:02X}" for byte in char.encode("utf-8"))
    return "".join(out)


def class_name(key: str) -> str:
    """The exact class name behind a partition key made by :func:`class_key`."""
    if not _KEY.fullmatch(key):
        raise ValueError(f"{key!r} is not a class partition key")
    raw = bytearray()
    i = 0
    while i < len(key):
        char = key[i]
        if char == "%":
            raw.append(int(key[i + 1 : i + 3], 16))
            i += 3
            continue
        raw.extend(b" " if char == "_" else char.encode("ascii"))
        i += 1
    return raw.decode("utf-8")


CLASS_PARTITIONS = dg.StaticPartitionsDefinition(
    [class_key(name) for name in load_classes("Kinetics-700-2020")]
)

# Classes are independent: a backfill runs one class per run, so runs parallelize and fail alone.
PER_CLASS_BACKFILL = dg.BackfillPolicy.multi_run(max_partitions_per_run=1)
# Chosen knowingly (README, "Per-class backfills"): Dagster marks the parameter beta and says so once per asset
# that takes it, a dozen identical warnings at every import of the code location. Only that warning is silenced.
warnings.filterwarnings("ignore", message=r"Parameter `backfill_policy` of function `asset` is currently in beta",
                        category=dg.BetaWarning)


# The note's Table 4: I3D trained on 100, 200, ..., 600 and all examples per class (a profile scales the numbers).
EXAMPLES_PARTITIONS = dg.StaticPartitionsDefinition(["100", "200", "300", "400", "500", "600", "all"])
