"""The code location: every stage's assets and checks, the jobs, and the active profile's resources."""

from __future__ import annotations

import dagster as dg

from jobs import JOBS
from kinetics_assets.acquisition import assets as acquisition_assets
from kinetics_assets.acquisition.sensors import next_round_sensor
from kinetics_assets.benchmark import assets as benchmark_assets
from kinetics_assets.editions import assets as edition_assets
from kinetics_assets.editions import link_rot as link_rot_assets
from kinetics_assets.editions.sensors import link_rot_sensor, weekly_availability_sweep
from kinetics_assets.release import assets as release_assets
from kinetics_assets.voting import assets as voting_assets
from resources.profiles import resources_for

# In the order of the dataset's life: import, replenish, vote, release, watch the release rot; then benchmark it.
STAGES = [edition_assets, acquisition_assets, voting_assets, release_assets, link_rot_assets]
BENCHMARK = [benchmark_assets]

# Who answers for an asset, shown in the catalog: the curation team for the dataset's life, the benchmark team
# for the model trained on it (Dagster owners are e-mails or `team:` names).
OWNERS = {"benchmark": ["team:benchmark"]}
CURATION_OWNERS = ["team:curation"]


def with_owners(spec: dg.AssetSpec) -> dg.AssetSpec:
    return spec.replace_attributes(owners=OWNERS.get(spec.group_name, CURATION_OWNERS))


defs = dg.Definitions(
    assets=dg.map_asset_specs(with_owners, dg.load_assets_from_modules([*STAGES, *BENCHMARK])),
    asset_checks=dg.load_asset_checks_from_modules(STAGES),
    jobs=JOBS,
    sensors=[voting_assets.vote_inbox_sensor, next_round_sensor, link_rot_sensor],
    schedules=[weekly_availability_sweep],
    resources=resources_for(),
)
