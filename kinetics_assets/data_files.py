"""Where the data shipped inside the package lives (class lists, the note's tables, a real annotation CSV)."""

from __future__ import annotations

from importlib import resources as importlib_resources
from pathlib import Path


def data_path(name: str) -> Path:
    """Path of a file shipped in ``kinetics_assets/data``."""
    path = Path(str(importlib_resources.files("kinetics_assets") / "data" / name))
    if not path.is_file():
        raise FileNotFoundError(f"shipped data file {name!r} is missing at {path}")
    return path
