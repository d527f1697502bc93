"""The one place where a profile picks the resources: ``KINETICS_PROFILE`` (default ``sandbox``).

``sandbox`` keeps everything under ``KINETICS_HOME`` (default ``./var``) and talks to the local sandbox platform;
production profiles (GCS, Postgres, YouTube) plug in here as they are built.
"""

from __future__ import annotations

import os
from pathlib import Path

from resources.storage import LocalArtifactStore, LocalParquetIOManager

DEFAULT_PROFILE = "sandbox"


def kinetics_home() -> Path:
    """Root of everything a local run writes (gitignored): asset values, artefacts, the Dagster instance."""
    return Path(os.environ.get("KINETICS_HOME", "var")).resolve()


def _sandbox_resources() -> dict:
    home = kinetics_home()
    return {
        "io_manager": LocalParquetIOManager(base_dir=str(home / "assets")),
        "artifacts": LocalArtifactStore(root=str(home / "artifacts")),
    }


PROFILES = {"sandbox": _sandbox_resources}


def active_profile() -> str:
    return os.environ.get("KINETICS_PROFILE", DEFAULT_PROFILE)


def resources_for(profile: str | None = None) -> dict:
    """The Dagster resources of ``profile`` (the active one by default)."""
    name = profile or active_profile()
    if name not in PROFILES:
        raise ValueError(f"unknown KINETICS_PROFILE {name!r}; known profiles: {', '.join(PROFILES)}")
    return PROFILES[name]()
