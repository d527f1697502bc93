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
from ledger_backends import ledger_backend, ledger_server  # noqa: E402,F401  (ledger tests on SQLite and PostgreSQL)

ensure_dagster_home()


@pytest.fixture(scope="session")
def kinetics_home() -> Path:
    return _RUN_HOME


@pytest.fixture(scope="module")
def rotting_world(tmp_path_factory):
    """A link-rot-heavy sandbox world with at least one removal of every kind (first such seed)."""
    from resources.sandbox.truth import GroundTruth
    from resources.sandbox.world import DEMO_CLASSES, REMOVAL_REASONS, World, WorldConfig

    for seed in range(20):
        config = WorldConfig(seed=seed, classes=DEMO_CLASSES[:2], relevant_per_class=6, annual_removal_rate=0.3)
        world = World(config, tmp_path_factory.mktemp("rotting"))
        truth = GroundTruth(world)
        if {truth.removal(i).reason for i in truth.ids() if truth.removal(i)} == set(REMOVAL_REASONS):
            return world
    raise AssertionError("no seed in range(20) gives every removal reason")
