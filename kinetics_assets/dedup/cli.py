"""``kinetics dedup DIRECTORY``: cluster the duplicate videos of a folder and print the clusters as JSON."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import stat
from pathlib import Path

import typer

from kinetics_assets.dedup import (
    ClipItem,
    MatchParams,
    clusters,
    find_matches,
    fingerprint_video,
)


def _folder(directory: str) -> Path:
    """The folder named on the command line; an empty name is refused (it would silently mean the current one)."""
    if not directory.strip():
        raise typer.BadParameter("is empty; name a folder (use '.' for the current one)", param_hint="DIRECTORY")
    path = Path(directory)
    if not path.is_dir():
        raise typer.BadParameter(f"{directory!r} is not a folder", param_hint="DIRECTORY")
    return path


def _not_a_video_file(path: Path) -> str | None:
    """Why ``path`` cannot be fingerprinted without opening it (None: a regular file, maybe behind a link).

    Opening a FIFO would block forever, and a broken link would vanish without a word, so both are named."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        if path.is_symlink():
            target = os.readlink(path)
            if error.errno == errno.ELOOP:
                return f"symlink loop (-> {target})"
            return f"dangling symlink (-> {target}: {error.strerror})"
        return f"cannot be read ({error.strerror})"
    if stat.S_ISDIR(mode):
        return "a folder (subfolders are not searched)"
    if not stat.S_ISREG(mode):
        return "not a regular file (a FIFO, socket or device)"
    return None


def dedup(
    directory: str = typer.Argument(..., help="folder of video files"),
    max_distance: int = typer.Option(MatchParams.max_distance, help="bits of 64 under which two frames match"),
) -> None:
    """Print the duplicate clusters of DIRECTORY's videos as JSON: a list of clusters, each a list of file names.

    Every entry left out is reported on stderr with its reason (not a readable video, truncated, only flat
    frames, a broken or looping link, a folder, a FIFO); hidden entries (names starting with '.') are ignored.
    """
    folder = _folder(directory)
    names, fingerprints = [], []
    for path in sorted(p for p in folder.iterdir() if not p.name.startswith(".")):
        reason = _not_a_video_file(path)
        if reason is not None:
            typer.echo(f"skipped: {path}: {reason}", err=True)
            continue
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
