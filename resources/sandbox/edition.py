"""A "previous edition" of annotations for a sandbox world: the demo's starting point.

Writes the official Kinetics CSV layout (train.csv, validate.csv, test.csv) from the world's own relevant videos
as they stood at the world's epoch, with per-class counts spread around `minimum` so that some classes start
below it (and link-rot pushes more under later), while most relevant videos stay unused for replenishment.
"""

from __future__ import annotations

import csv
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import typer

from resources.sandbox.render import stable_int
from resources.sandbox.world import DEMO_CLASSES, VideoRecord, World, WorldConfig, parse_day

CLIP_SECONDS = 10
SPLIT_SHARES = (("test", 0.2), ("validate", 0.1))  # the rest is train; "validate" as in Kinetics-700 files
COUNT_SPREAD = 0.3                            # class counts span minimum * (1 +- COUNT_SPREAD)
LABELLED_COLUMNS = ("label", "youtube_id", "time_start", "time_end", "split", "is_cc")
TEST_COLUMNS = ("youtube_id", "time_start", "time_end", "split")
FILES = {"train": "train.csv", "validate": "validate.csv", "test": "test.csv"}
PRIVATE_TEST = "private/test_labelled.csv"


@dataclass(frozen=True)
class EditionSummary:
    counts: dict[str, int]    # clips per class in the edition
    unused: dict[str, int]    # relevant videos of the class the edition did not use
    below_minimum: tuple[str, ...]
    files: tuple[Path, ...]


def _eligible(world: World, label: str) -> list[VideoRecord]:
    """Relevant videos online at the epoch whose action holds a whole-second 10-s window."""
    epoch = world.config.epoch
    return [rec for rec in world.iter_records(label=label, kind="relevant")
            if parse_day(rec.upload_date) <= epoch and world.availability(rec.id, epoch).available
            and math.floor(rec.action_end) - math.ceil(rec.action_start) >= CLIP_SECONDS]


def _targets(classes: tuple[str, ...], minimum: int, rng: np.random.Generator) -> dict[str, int]:
    offsets = np.round(minimum * np.linspace(-COUNT_SPREAD, COUNT_SPREAD, len(classes))).astype(int)
    return {label: max(1, minimum + int(off)) for label, off in zip(classes, rng.permutation(offsets))}


def _atomic_csv(path: Path, columns: tuple[str, ...], rows: list[dict]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_previous_edition(world: World, out_dir: Path, minimum: int = 24, seed: int = 0) -> EditionSummary:
    """Write train/validate/test CSVs of a previous edition of `world` into out_dir; see the module docstring."""
    if minimum < 1:
        raise ValueError(f"minimum must be >= 1, got {minimum}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([world.config.seed, seed, stable_int("edition")])
    targets = _targets(world.config.classes, minimum, rng)
    rows: dict[str, list[dict]] = {split: [] for split in FILES}
    counts, unused = {}, {}
    for label, target in targets.items():
        pool = _eligible(world, label)
        if len(pool) < target:
            raise ValueError(f"class {label!r}: only {len(pool)} relevant videos were online at the epoch with a "
                             f"10-s action window, the edition needs {target}; raise relevant_per_class")
        chosen = [pool[i] for i in sorted(rng.choice(len(pool), size=target, replace=False))]
        n_test, n_val = (int(round(share * target)) for _, share in SPLIT_SHARES)
        splits = ["test"] * n_test + ["validate"] * n_val + ["train"] * (target - n_test - n_val)
        for rec, split in zip(chosen, rng.permutation(splits)):
            start = int(rng.integers(math.ceil(rec.action_start), math.floor(rec.action_end) - CLIP_SECONDS + 1))
            rows[split].append({"label": label, "youtube_id": rec.id, "time_start": start,
                                "time_end": start + CLIP_SECONDS, "split": split,
                                "is_cc": int(rng.random() < 0.15)})
        counts[label] = target
        unused[label] = world.config.relevant_per_class - target
    files = []
    for split, name in FILES.items():
        path = out_dir / name
        _atomic_csv(path, TEST_COLUMNS if split == "test" else LABELLED_COLUMNS, rows[split])
        files.append(path)
    # The maintainers' own labelled copy of the test split (published without labels), as Kinetics keeps one.
    private = out_dir / PRIVATE_TEST
    private.parent.mkdir(exist_ok=True)
    _atomic_csv(private, LABELLED_COLUMNS, rows["test"])
    files.append(private)
    below = tuple(label for label, n in counts.items() if n < minimum)
    return EditionSummary(counts, unused, below, tuple(files))


def edition(
    out: Path = typer.Option(..., "--out", help="Directory for train.csv, validate.csv, test.csv."),
    minimum: int = typer.Option(24, min=1, help="The edition's minimum clips per class; some classes start below."),
    seed: int = typer.Option(0, help="World seed (must match the served sandbox)."),
    classes: str = typer.Option("", help="Comma-separated Kinetics-700 class names (default: the demo set)."),
    relevant_per_class: int = typer.Option(60, min=1),
    distractors_per_class: int = typer.Option(20, min=0),
    cache_dir: Path | None = typer.Option(None, help="Where to keep the world index (default: a temp dir)."),
) -> None:
    """Write the sandbox world's previous-edition annotation CSVs."""
    config = WorldConfig(seed=seed, classes=tuple(c.strip() for c in classes.split(",") if c.strip()) or DEMO_CLASSES,
                         relevant_per_class=relevant_per_class, distractors_per_class=distractors_per_class)
    with tempfile.TemporaryDirectory(prefix="sandbox-world-") as scratch:
        summary = write_previous_edition(World(config, cache_dir or Path(scratch)), out, minimum)
    typer.echo(f"wrote {sum(summary.counts.values())} clips for {len(summary.counts)} classes to {out}; "
               f"below minimum {minimum}: {', '.join(summary.below_minimum) or 'none'}")
