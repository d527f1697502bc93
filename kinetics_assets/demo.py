"""The demo: everything built so far, materialized through the local Dagster instance on the sandbox profile.

The sandbox world supplies the starting point — a previous edition in the official format, as
`kinetics sandbox edition` writes it — and the jobs then run exactly as they would on production data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import dagster as dg
import pandas as pd

from jobs import MAIN_JOB, PER_CLASS_JOB
from kinetics_assets.instance import ensure_dagster_home
from kinetics_assets.partitions import class_key
from resources.profiles import active_profile, kinetics_home, resources_for, sandbox_edition_dir


def _latest_value(instance: dg.DagsterInstance, asset: str, partition: str | None = None) -> pd.DataFrame:
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    if partition is not None:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition]), limit=1
        ).records
        event = records[0].event_log_entry
    return pd.read_parquet(event.asset_materialization.metadata["path"].value)


def write_sandbox_edition(resources: dict, echo: Callable[[str], None]) -> None:
    """Emit the sandbox world's previous edition once (reruns keep the same files)."""
    from resources.sandbox.edition import write_previous_edition
    from resources.sandbox.world import World

    out = sandbox_edition_dir()
    if all((out / name).is_file() for name in ("train.csv", "validate.csv", "test.csv")):
        return
    platform = resources["video_platform"]
    world = World(platform.world_config(), Path(platform.cache_dir))
    summary = write_previous_edition(world, out, minimum=resources["policy"].minimum_clips_per_class)
    echo(f"Sandbox previous edition: {sum(summary.counts.values())} clips of {len(summary.counts)} classes in {out}")


def run_demo(echo: Callable[[str], None] = print) -> None:
    if active_profile() != "sandbox":
        raise SystemExit(f"the demo runs on the sandbox profile, not {active_profile()!r}")
    home = ensure_dagster_home()
    write_sandbox_edition(resources_for(), echo)
    from kinetics_assets.definitions import defs

    instance = dg.DagsterInstance.get()
    echo(f"Profile: sandbox   Dagster instance: {home}")
    if not defs.resolve_job_def(MAIN_JOB).execute_in_process(instance=instance).success:
        raise RuntimeError(f"job {MAIN_JOB} failed")

    deficits = _latest_value(instance, "class_deficits")
    short = deficits[deficits["deficit"] > 0]
    per_class = defs.resolve_job_def(PER_CLASS_JOB)
    for name in short["class_name"]:
        echo(f"Replenishing {name!r} ...")
        if not per_class.execute_in_process(instance=instance, partition_key=class_key(name)).success:
            raise RuntimeError(f"job {PER_CLASS_JOB} failed for class {name!r}")

    table1 = _latest_value(instance, "class_statistics")
    echo("\nTable 1 (clips per class):\n" + table1.to_markdown(index=False))
    found = {name: len(_latest_value(instance, "candidate_videos", class_key(name))) for name in short["class_name"]}
    summary = short[["class_name", "clips", "deficit", "candidate_budget"]].assign(
        candidates=short["class_name"].map(found)
    )
    echo("\nClasses under the minimum and their candidates:\n" + summary.to_markdown(index=False))
    echo(f"\nOutputs: {kinetics_home() / 'artifacts'} (reports), {kinetics_home() / 'assets'} (asset values)")
    echo("Open the UI: make ui   (or: .venv/bin/kinetics ui) then http://127.0.0.1:3000")
