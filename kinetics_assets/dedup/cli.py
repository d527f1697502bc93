"""``kinetics dedup DIR``: cluster the duplicate videos of a folder and print the clusters as JSON."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import typer

from kinetics_assets.dedup import (
    ClipItem,
    MatchParams,
    clusters,
    find_matches,
    fingerprint_video,
)


def dedup(
    directory: Path = typer.Argument(..., exists=True, file_okay=False, help="folder of video files"),
    max_distance: int = typer.Option(MatchParams.max_distance, help="bits of 64 under which two frames match"),
) -> None:
    """Print the duplicate clusters of DIR's videos as JSON: a list of clusters, each a list of file names.

    Files that are not readable videos, or show only flat frames, are reported on stderr and left out.
    """
    names, fingerprints = [], []
    for path in sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith(".")):
        try:
            fingerprint = fingerprint_video(path)
        except ValueError as error:
            typer.echo(f"skipped: {error}", err=True)
            continue
        if len(fingerprint) == 0:
            typer.echo(f"skipped: {path}: no frame with enough detail to compare", err=True)
            continue
        names.append(path.name)
        fingerprints.append(fingerprint)
    params = dataclasses.replace(MatchParams(), max_distance=max_distance)
    matches = find_matches(fingerprints, match=params)
    groups = clusters([ClipItem(name) for name in names], matches)
    typer.echo(json.dumps([[names[k] for k in group] for group in groups]))
