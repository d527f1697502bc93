"""Every test run writes into its own KINETICS_HOME and Dagster instance, never the developer's ./var."""

import os
import tempfile
from pathlib import Path

import pytest

_RUN_HOME = Path(tempfile.mkdtemp(prefix="kinetics-tests-"))
os.environ["KINETICS_HOME"] = str(_RUN_HOME)
os.environ["DAGSTER_HOME"] = str(_RUN_HOME / "dagster_home")
os.environ.setdefault("KINETICS_PROFILE", "sandbox")

from kinetics_assets.instance import ensure_dagster_home  # noqa: E402  (reads the environment set above)

ensure_dagster_home()


@pytest.fixture(scope="session")
def kinetics_home() -> Path:
    return _RUN_HOME
