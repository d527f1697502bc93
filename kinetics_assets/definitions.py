"""The code location: every stage's assets and checks, the jobs, and the active profile's resources."""

from __future__ import annotations

import dagster as dg

from jobs import JOBS
from kinetics_assets.acquisition import assets as acquisition_assets
from kinetics_assets.editions import assets as edition_assets
from kinetics_assets.release import assets as release_assets
from kinetics_assets.voting import assets as voting_assets
from resources.profiles import resources_for

STAGES = [edition_assets, acquisition_assets, voting_assets, release_assets]  # in the order of the dataset's life

defs = dg.Definitions(
    assets=dg.load_assets_from_modules(STAGES),
    asset_checks=dg.load_asset_checks_from_modules(STAGES),
    jobs=JOBS,
    sensors=[voting_assets.vote_inbox_sensor],
    resources=resources_for(),
)
