"""The local Dagster instance (SQLite under ``$KINETICS_HOME/dagster_home``) that the demo and the UI share."""

from __future__ import annotations

import os
from pathlib import Path

from resources.profiles import kinetics_home
from resources.storage import atomic_write_bytes

# No telemetry: these machines (and many curators' clusters) have no route out.
_INSTANCE_YAML = "telemetry:\n  enabled: false\n"


def ensure_dagster_home() -> Path:
    """Create the instance folder if needed and point ``DAGSTER_HOME`` at it (an explicit setting wins)."""
    home = Path(os.environ.get("DAGSTER_HOME") or kinetics_home() / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        atomic_write_bytes(home / "dagster.yaml", _INSTANCE_YAML.encode())
    os.environ["DAGSTER_HOME"] = str(home)
    return home
