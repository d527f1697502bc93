"""The demo: everything built so far, materialized through the local Dagster instance on the active profile."""

from __future__ import annotations

from typing import Callable

import dagster as dg
import pandas as pd

from jobs import MAIN_JOB, PER_CLASS_JOB
from kinetics_assets.editions.statistics import clips_per_class
from kinetics_assets.instance import ensure_dagster_home
from kinetics_assets.partitions import CLASS_PARTITIONS, class_key
from resources.profiles import active_profile, kinetics_home

RAREST_CLASSES_SHOWN = 5


def _latest_value(instance: dg.DagsterInstance, asset: str) -> pd.DataFrame:
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    path = event.asset_materialization.metadata["path"].value
    return pd.read_parquet(path)


def run_demo(echo: Callable[[str], None] = print) -> None:
    home = ensure_dagster_home()
    from kinetics_assets.definitions import defs

    instance = dg.DagsterInstance.get()
    echo(f"Profile: {active_profile()}   Dagster instance: {home}")
    result = defs.resolve_job_def(MAIN_JOB).execute_in_process(instance=instance)
    if not result.success:
        raise RuntimeError(f"job {MAIN_JOB} failed (run {result.run_id})")

    annotations = _latest_value(instance, "edition_annotations")
    counts = clips_per_class(annotations)
    partitioned = counts["class_name"].map(class_key).isin(CLASS_PARTITIONS.get_partition_keys())
    rarest = counts.loc[partitioned, "class_name"].head(RAREST_CLASSES_SHOWN)
    per_class = defs.resolve_job_def(PER_CLASS_JOB)
    for name in rarest:
        if not per_class.execute_in_process(instance=instance, partition_key=class_key(name)).success:
            raise RuntimeError(f"job {PER_CLASS_JOB} failed for class {name!r}")

    table1 = _latest_value(instance, "class_statistics")
    echo("\nTable 1 (clips per class):\n" + table1.to_markdown(index=False))
    echo(f"\nPer-class slices materialized for the {len(rarest)} rarest classes: {', '.join(rarest)}")
    echo(f"Outputs: {kinetics_home() / 'artifacts'} (reports), {kinetics_home() / 'assets'} (asset values)")
    echo("Open the UI: make ui   (or: .venv/bin/kinetics ui) then http://127.0.0.1:3000")
