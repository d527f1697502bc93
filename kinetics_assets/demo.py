"""The demo: everything built so far, materialized through the local Dagster instance on the sandbox profile.

The sandbox supplies the outside world — a previous edition in the official format (as `kinetics sandbox
edition` writes it), the video platform, and a crowd that answers the published tasks — and the jobs run
exactly as they would on production data; votes reach the pipeline through the inbox sensor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import dagster as dg
import pandas as pd

from jobs import CURATE_JOB, EDITION_CLIPS_JOB, MAIN_JOB, REPLENISH_JOB, VOTING_JOB
from kinetics_assets.editions.statistics import TABLE1_COLUMNS
from kinetics_assets.instance import ensure_dagster_home, fail_dead_runs
from kinetics_assets.partitions import class_key
from resources.profiles import active_profile, kinetics_home, resources_for, sandbox_edition_dir

Echo = Callable[[str], None]
# The console shows this script's summary; every event still lands in the instance for the UI.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _value(instance: dg.DagsterInstance, asset: str, partition: str | None = None) -> pd.DataFrame:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition] if partition else None),
        limit=1,
    ).records
    return pd.read_parquet(records[0].event_log_entry.asset_materialization.metadata["path"].value)


def write_sandbox_edition(resources: dict, echo: Echo) -> None:
    """Emit the sandbox world's previous edition once (reruns keep the same files)."""
    from resources.sandbox.edition import write_previous_edition
    from resources.sandbox.world import World

    out = sandbox_edition_dir()
    if all(Path(name).is_file() for name in resources["editions"].current_edition().files):
        return
    platform = resources["video_platform"]
    world = World(platform.world_config(), Path(platform.cache_dir))
    summary = write_previous_edition(world, out, minimum=resources["policy"].minimum_clips_per_class)
    echo(f"Sandbox previous edition: {sum(summary.counts.values())} clips of {len(summary.counts)} classes in {out}")


def crowd_answers(resources: dict, classes: list[str], echo: Echo) -> None:
    """The sandbox crowd works through the published tasks and drops its vote files into the inbox."""
    from resources.sandbox.crowd import SandboxCrowd

    crowd = SandboxCrowd(platform=resources["video_platform"], inbox=resources["crowd_inbox"])
    written = [path for path in map(crowd.answer_pending, classes) if path]
    echo(f"Sandbox crowd: {len(written)} vote files delivered to the inbox")


def run_demo(echo: Echo = print) -> None:
    if active_profile() != "sandbox":
        raise SystemExit(f"the demo runs on the sandbox profile, not {active_profile()!r}")
    home = ensure_dagster_home()
    resources = resources_for()
    write_sandbox_edition(resources, echo)
    from kinetics_assets.definitions import defs
    from kinetics_assets.voting.assets import vote_inbox_sensor

    instance = dg.DagsterInstance.get()
    fail_dead_runs(instance)  # runs of a demo killed with -9 would stay STARTED forever
    echo(f"Profile: sandbox   Dagster instance: {home}")

    def run(job: str, partition: str | None = None, **kwargs) -> None:
        result = defs.resolve_job_def(job).execute_in_process(
            instance=instance, partition_key=partition, run_config=QUIET_CONSOLE, **kwargs
        )
        if not result.success:
            raise RuntimeError(f"job {job} failed" + (f" for class partition {partition}" if partition else ""))

    run(MAIN_JOB)
    deficits = _value(instance, "class_deficits")
    short = deficits[deficits["deficit"] > 0]
    echo(f"{len(short)} of {len(deficits)} classes are under the minimum")
    for name in deficits["class_name"]:
        echo(f"Fetching the surviving edition clips of {name!r} ...")
        run(EDITION_CLIPS_JOB, class_key(name))
    for name in short["class_name"]:
        echo(f"Replenishing {name!r}: queries, candidates, clips, annotation tasks ...")
        run(REPLENISH_JOB, class_key(name))

    crowd_answers(resources, list(short["class_name"]), echo)
    with dg.build_sensor_context(instance=instance, resources={"crowd_inbox": resources["crowd_inbox"]}) as context:
        requests = vote_inbox_sensor(context)
    echo(f"Vote inbox sensor: {len(requests)} run requests")
    for request in requests:
        run(VOTING_JOB, request.partition_key, tags={"dagster/run_key": request.run_key})
    run(CURATE_JOB)

    echo("\nTable 1 of the imported editions:\n" + _value(instance, "class_statistics").to_markdown(index=False))
    release = instance.get_latest_materialization_event(dg.AssetKey("edition_release")).asset_materialization.metadata
    new_table1 = pd.DataFrame([record.data for record in release["table1"].value.records])[TABLE1_COLUMNS]
    echo("\nTable 1, previous edition → replenished release:\n" + new_table1.to_markdown(index=False))
    yields = _value(instance, "class_yields")
    columns = ["rank", "class_name", "candidates", "accepted", "published", "p_voted_positive", "p_published",
               "paper_p_voted_positive", "paper_p_published"]
    echo("\nYields (the note's Appendix A):\n" + yields[columns].to_markdown(index=False))
    echo("\nTable 3 (continents):\n" + _value(instance, "edition_geography").to_markdown(index=False))
    echo(f"\nRelease (passed every Great Expectations check): {release['release'].value}")
    echo(f"\nOutputs: {kinetics_home() / 'artifacts'} (reports), {kinetics_home() / 'assets'} (asset values),")
    echo(f"         {kinetics_home() / 'clips'} (clips), {kinetics_home() / 'crowd'} (tasks and votes)")
    echo("Open the UI: make ui   (or: .venv/bin/kinetics ui) then http://127.0.0.1:3000")
