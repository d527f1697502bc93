"""The demo: everything built so far, materialized through the local Dagster instance on the sandbox profile.

The sandbox supplies the outside world — a previous edition in the official format (as `kinetics sandbox
edition` writes it), the video platform, and a crowd that answers the published tasks — and the jobs run
exactly as they would on production data; votes reach the pipeline through the inbox sensor, ticked by the
daemon's own code (its tick, cursor and runs land in the instance, so the UI's daemon does not redo them).

With `faults` the sandbox platform answers that share of requests with transient faults (429, 503, stalls,
truncated bodies, throttled-session waves). Dagster's retry policies and the fetchers' own retries absorb most;
what they leave (clips with transient failures, videos whose availability stayed unknown) is materialized again,
from that asset on, a bounded number of rounds, as an operator would. The release must not change. (The runs the
sensors launch run in the code location, without injected faults: the voting assets do not call the platform.)
"""

from __future__ import annotations

import datetime
import logging
import time
from pathlib import Path
from typing import Callable

import dagster as dg
import pandas as pd

from jobs import BENCHMARK_DATA_JOB, BENCHMARK_REPORT_JOB, CURATE_JOB, EDITION_CLIPS_JOB, MAIN_JOB, REPLENISH_JOB, \
    TRAIN_JOB
from kinetics_assets.acquisition.assets import TRANSIENT_CHECK
from kinetics_assets.acquisition.recall import recall_by_language
from kinetics_assets.editions.statistics import TABLE1_COLUMNS
from kinetics_assets.instance import WORKSPACE, ensure_dagster_home, fail_dead_runs
from kinetics_assets.materialized import latest
from kinetics_assets.partitions import class_key, class_name
from kinetics_assets.sensor_ticks import output_into, run_queued, tick_sensors, workspace_context
from resources.profiles import active_profile, kinetics_home, resources_for, sandbox_edition_dir

Echo = Callable[[str], None]
# The console shows this script's summary; every event still lands in the instance for the UI.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
ROUNDS = 6             # materializations of one job at most, when transient failures are left each time
ROUND_PAUSE_S = 10.0   # transient faults pass with time (the sandbox draws them afresh every 10 s)
TICK_WAIT_S = 90.0     # a sensor ticked less than its minimum interval (30 s) ago ticks after it
# Years the platform moves on after the first release. Rounds stop as soon as a class reaches the minimum, so one
# year at the sandbox's 3% a year (what Table 2 implies) already takes replenished classes under it.
YEARS_LATER = 1


def records_table(value: dg.MetadataValue) -> pd.DataFrame:
    """A table metadata value as a frame (columns in the table's schema order), for the console summary."""
    columns = [column.name for column in value.value.schema.columns]
    return pd.DataFrame([record.data for record in value.value.records], columns=columns)


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

    with dg.build_resources({"inbox": resources["crowd_inbox"]}) as built:  # a bucket's name is an EnvVar until then
        crowd = SandboxCrowd(platform=resources["video_platform"], inbox=built.inbox)
    written = [path for path in map(crowd.answer_pending, classes) if path]
    echo(f"Sandbox crowd: {len(written)} vote files delivered to the inbox")


def left_unfinished(result: dg.ExecuteInProcessResult, selection: list[dg.AssetKey]) -> dg.AssetKey | None:
    """The first asset of `selection` (in dependency order) that this run left unfinished: not materialized,
    materialized with transient fetch failures left, or a link-rot check with videos of unknown status."""
    materialized = {event.asset_key: event.materialization for event in result.get_asset_materialization_events()}
    transient = {evaluation.asset_key for evaluation in result.get_asset_check_evaluations()
                 if evaluation.check_name == TRANSIENT_CHECK and not evaluation.passed}
    for key in selection:
        unknown = key in materialized and materialized[key].metadata.get("unknown_after_retries")
        if key not in materialized or key in transient or (unknown is not None and unknown.value):
            return key
    return None


def materialize_until_finished(defs: dg.Definitions, instance: dg.DagsterInstance, job: str,
                               partition: str | None = None, echo: Echo = print, pause_s: float = ROUND_PAUSE_S,
                               **kwargs) -> int:
    """Materialize the job; again from the first asset left unfinished, at most ROUNDS times in all (a failed
    run raises at once: Dagster's retry policies have had their turn). Returns the rounds it took."""
    job_def = defs.resolve_job_def(job)
    layer = job_def.asset_layer
    order = [key for key in layer.asset_graph.toposorted_asset_keys if key in layer.selected_asset_keys]
    where = f" for class partition {partition}" if partition else ""
    selection = order
    for round_number in range(1, ROUNDS + 1):
        result = job_def.execute_in_process(instance=instance, partition_key=partition, run_config=QUIET_CONSOLE,
                                            asset_selection=selection, **kwargs)
        if not result.success:
            raise RuntimeError(f"job {job} failed{where}")
        unfinished = left_unfinished(result, selection)
        if unfinished is None:
            return round_number
        selection = order[order.index(unfinished):]
        if round_number < ROUNDS:
            echo(f"  {job}{where}: transient failures left at {unfinished.to_user_string()}; "
                 f"again from there in {pause_s:g} s (round {round_number + 1} of {ROUNDS})")
            time.sleep(pause_s)
    raise RuntimeError(f"job {job}{where}: transient failures still left at {unfinished.to_user_string()} "
                       f"after {ROUNDS} rounds; run the demo again later")


def daemon_sensor_tick(instance: dg.DagsterInstance, sensor: str, echo: Echo) -> list[dg.DagsterRun]:
    """A tick of every running sensor through the daemon's code, until `sensor` has ticked, and the runs the
    ticks requested, launched from the run queue and finished; returns those runs. The code server's and runs'
    console output goes to a log file; everything else is in the instance (the UI's sensor and run pages)."""
    log = kinetics_home() / "logs" / "demo_daemon.log"
    logger = logging.getLogger("kinetics.demo.daemon")
    deadline = time.monotonic() + TICK_WAIT_S
    with output_into(log), workspace_context(instance, WORKSPACE) as context:
        ticks = tick_sensors(context, logger)
        while sensor not in ticks:
            if time.monotonic() > deadline:
                raise RuntimeError(f"sensor {sensor} did not tick within {TICK_WAIT_S:g} s: is it stopped in the UI?")
            time.sleep(5)
            ticks = tick_sensors(context, logger)
        run_ids = [run_id for tick in ticks.values() for run_id in tick.run_ids]
        run_queued(context, run_ids)
    echo(f"Sensors ticked through the daemon (its log: {log}):")
    for name, tick in sorted(ticks.items()):
        why = f" — {tick.skip_reason}" if tick.skip_reason else ""
        echo(f"  {name}: tick {tick.tick_id} {tick.status.value.lower()}, "
             f"{len(tick.run_ids)} run(s) launched and finished{why}")
    return list(instance.get_runs(filters=dg.RunsFilter(run_ids=run_ids))) if run_ids else []


def crowd_rounds(instance: dg.DagsterInstance, resources: dict, classes: list[str], echo: Echo) -> None:
    """The crowd votes on the classes' tasks and the inbox sensor's runs decide them; a class still short gets its
    next round from `next_round_sensor`, until none does (at the minimum, or its supply exhausted)."""
    from kinetics_assets.acquisition.sensors import next_round_sensor
    from kinetics_assets.voting.assets import vote_inbox_sensor

    for _ in range(ROUNDS):
        if not classes:
            return
        crowd_answers(resources, classes, echo)
        daemon_sensor_tick(instance, vote_inbox_sensor.name, echo)
        again = daemon_sensor_tick(instance, next_round_sensor.name, echo)
        classes = sorted(class_name(r.tags["dagster/partition"]) for r in again if r.job_name == REPLENISH_JOB)
        if classes:
            echo(f"Still under the minimum after their votes, another round: {', '.join(classes)}")
    raise RuntimeError(f"classes still short after {ROUNDS} crowd rounds: {', '.join(classes)}")


def years_later(resources: dict, echo: Echo) -> None:
    """Move the sandbox platform's date (for every process) to YEARS_LATER after the first release's; a date
    already there or later stays: the platform's time never runs back."""
    clock = resources["video_platform"].shared_clock()
    later = clock.default + datetime.timedelta(days=round(365.25 * YEARS_LATER))
    if clock.today() < later:
        echo(f"\n{YEARS_LATER} year(s) later: the sandbox platform's date moves from {clock.today()} to {later}")
        clock.set(later)
    else:
        echo(f"\nThe sandbox platform's date is already {clock.today()}")


def link_rot_loop(instance: dg.DagsterInstance, resources: dict, echo: Echo,
                  run: Callable[..., None]) -> None:
    """The loop as the daemon runs it: link-rot ticks find and confirm removals and launch a replenishment run
    per class under the minimum; the crowd votes; the inbox sensor launches the voting runs; a new release."""
    from kinetics_assets.editions.sensors import link_rot_sensor

    years_later(resources, echo)
    daemon_sensor_tick(instance, link_rot_sensor.name, echo)  # first answers: suspects, not yet gone
    replenished = daemon_sensor_tick(instance, link_rot_sensor.name, echo)  # a tick later: confirmed
    classes = sorted(class_name(r.tags["dagster/partition"]) for r in replenished if r.job_name == REPLENISH_JOB)
    echo(f"Link-rot took {len(classes)} class(es) under the minimum, replenished by the sensor's runs: "
         f"{', '.join(classes) or 'none'}")
    crowd_rounds(instance, resources, classes, echo)
    run(CURATE_JOB)


def benchmark(instance: dg.DagsterInstance, echo: Echo, run: Callable[..., None]) -> None:
    """The note's Table 4 on the latest release: shards, then one training and evaluation run per size (the
    tiny configuration; JAX's compilation cache makes every run after the first skip the compile)."""
    from kinetics_assets.benchmark.assets import EXAMPLES

    run(BENCHMARK_DATA_JOB)
    for key in EXAMPLES:
        started = time.monotonic()
        run(TRAIN_JOB, key)
        scores = latest(instance, "i3d_evaluation", key)[0].set_index("split")["top1"]
        echo(f"  I3D trained on {key!r} examples per class (scaled): test top-1 {scores.get('test', float('nan')):.1f} %"
             f" ({time.monotonic() - started:.0f} s)")
    run(BENCHMARK_REPORT_JOB)


def with_faults(defs: dg.Definitions, rate: float) -> dg.Definitions:
    """The same definitions, their sandbox platform answering `rate` of its requests with transient faults."""
    from resources.sandbox.resource import SandboxPlatform

    platform = defs.resources["video_platform"]
    if not isinstance(platform, SandboxPlatform):
        raise SystemExit("--faults needs the sandbox platform")
    faulty = SandboxPlatform(**{**platform.model_dump(), "fault_rate": rate})
    return dg.Definitions(assets=defs.assets, asset_checks=defs.asset_checks, jobs=defs.jobs, sensors=defs.sensors,
                          resources={**defs.resources, "video_platform": faulty})


def run_demo(echo: Echo = print, faults: float = 0.0) -> None:
    from resources.sandbox.resource import SandboxPlatform

    home = ensure_dagster_home()
    resources = resources_for()
    if not isinstance(resources["video_platform"], SandboxPlatform):
        raise SystemExit(f"the demo runs on the sandbox platform: the sandbox profile, or gcp with "
                         f"KINETICS_GCP_WORLD=sandbox (deploy/gcp_demo.py), not {active_profile()!r} on YouTube")
    write_sandbox_edition(resources, echo)
    from kinetics_assets.definitions import defs

    if faults:
        defs = with_faults(defs, faults)
    instance = dg.DagsterInstance.get()
    fail_dead_runs(instance)  # runs of a demo killed with -9 would stay STARTED forever
    echo(f"Profile: {active_profile()}   Dagster instance: {home}" + (f"   injected faults: {faults:.0%}" if faults else ""))

    def run(job: str, partition: str | None = None, **kwargs) -> None:
        materialize_until_finished(defs, instance, job, partition, echo=echo, **kwargs)

    run(MAIN_JOB)
    deficits = latest(instance, "class_deficits")[0]
    short = deficits[deficits["deficit"] > 0]
    echo(f"{len(short)} of {len(deficits)} classes are under the minimum")
    for name in deficits["class_name"]:
        echo(f"Fetching the surviving edition clips of {name!r} ...")
        run(EDITION_CLIPS_JOB, class_key(name))
    for name in short["class_name"]:
        echo(f"Replenishing {name!r}: queries, candidates, clips, annotation tasks ...")
        run(REPLENISH_JOB, class_key(name))

    crowd_rounds(instance, resources, list(short["class_name"]), echo)
    run(CURATE_JOB)
    first = latest(instance, "edition_release")[1]
    echo(f"Released (passed every Great Expectations check): {first['release'].value}")

    link_rot_loop(instance, resources, echo, run)
    echo("\nThe I3D baseline on the latest release (Table 4, tiny configuration on CPU):")
    benchmark(instance, echo, run)

    statistics = latest(instance, "class_statistics")[0]
    echo("\nTable 1 of the imported editions:\n" + statistics.to_markdown(index=False))
    table1 = records_table(first["table1"])[TABLE1_COLUMNS]
    echo(f"\nTable 1, previous edition → {first['release_name'].value}:\n" + table1.to_markdown(index=False))
    release = latest(instance, "edition_release")[1]
    echo(f"\nAfter link-rot: {release['release_name'].value} (parent {release['parent'].value}), per class:\n"
         + records_table(release["changes_per_class"]).to_markdown(index=False))
    retention = latest(instance, "retention_table")[1]
    echo("\nTable 2 (clips still available, at each check), beside the note's:\n"
         + records_table(retention["table2"]).to_markdown(index=False))
    yields = latest(instance, "class_yields")[0]
    columns = ["rank", "class_name", "candidates", "accepted", "published", "p_voted_positive", "p_published",
               "paper_p_voted_positive", "paper_p_published"]
    echo("\nYields (the note's Appendix A):\n" + yields[columns].to_markdown(index=False))
    recall = pd.DataFrame([{"class_name": name, **recall_by_language(records_table(
        latest(instance, "candidate_videos", class_key(name))[1]["query_recall"]))} for name in short["class_name"]])
    echo("\nQuery recall (share of the class's known positives — edition videos still online, crowd-accepted videos "
         "— found: the plain name, then cumulative as each language's techniques are added):\n"
         + recall.to_markdown(index=False))
    echo("\nTable 3 (continents):\n" + latest(instance, "edition_geography")[0].to_markdown(index=False))
    table4, report = latest(instance, "benchmark_table")
    figure = (str(kinetics_home() / "artifacts" / "benchmark" / "figure1.png") if active_profile() == "sandbox"
              else f"{report['files'].value}/figure1.png")  # gcp: the object in the bucket
    echo("\nTable 4 (I3D, tiny configuration, sandbox-scaled examples per class; test_top1_low/high: bootstrap 95 % "
         f"interval over the test videos; chance 1/classes). Figure 1: {figure}\n" + table4.to_markdown(index=False))
    names = dict.fromkeys([first["release_name"].value, release["release_name"].value])  # a rerun: both the same
    echo(f"\nReleases (each passed every Great Expectations check): {', then '.join(names)}")
    if active_profile() == "sandbox":  # the gcp profile keeps them in its bucket under the same names
        echo(f"\nOutputs: {kinetics_home() / 'artifacts'} (reports), {kinetics_home() / 'assets'} (asset values),")
        echo(f"         {kinetics_home() / 'clips'} (clips), {kinetics_home() / 'crowd'} (tasks and votes)")
    echo("Open the UI: make ui   (or: .venv/bin/kinetics ui) then http://127.0.0.1:3000")
