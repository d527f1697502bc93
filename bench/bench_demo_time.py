"""Where `make demo`'s time goes: wall time by stage (job) and by asset, read from the Dagster event log.

The demo's instance (`$KINETICS_HOME/dagster_home`) holds every run, its step start/end events and the assets
each step materialized, and the sensor ticks the demo drove through the daemon. An asset's time is the time of the
steps that materialized it (STEP_START or STEP_RESTARTED to STEP_SUCCESS, STEP_FAILURE or STEP_UP_FOR_RETRY,
summed over attempts and partitions), so the next optimisation is chosen from data, not from a guess. The
instance is read from a temporary copy: opening a SQLite instance may migrate or create its storage, and the
demo's own must stay as it was.

    .venv/bin/python bench/bench_demo_time.py --home $KINETICS_HOME [--top 10] [--write-results]

`--write-results` replaces the "Where the demo's time goes" section of bench/RESULTS.md (other sections kept).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import shutil
import statistics
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import dagster as dg

sys.path.insert(0, str(Path(__file__).parent))
from bench_sandbox import machine_info  # noqa: E402
from results_md import replace_section  # noqa: E402

SECTION = "## Where the demo's time goes"
STARTS = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_RESTARTED}
ENDS = {dg.DagsterEventType.STEP_SUCCESS: "success", dg.DagsterEventType.STEP_FAILURE: "failure",
        dg.DagsterEventType.STEP_UP_FOR_RETRY: "retry"}


@dataclass(frozen=True)
class StepTiming:
    """One step of one run: its job, partition, the assets it materialized and its summed attempt seconds."""
    job: str
    run_id: str
    partition: str | None
    step: str
    assets: tuple[str, ...]
    seconds: float
    status: str  # of the last attempt: success, failure, retry (still waiting), or running


@dataclass(frozen=True)
class RunTiming:
    job: str
    run_id: str
    start: float
    end: float


@contextlib.contextmanager
def instance_copy(kinetics_home: Path) -> Iterator[dg.DagsterInstance]:
    """The demo's instance opened from a temporary copy of `$KINETICS_HOME/dagster_home`."""
    home = kinetics_home / "dagster_home"
    if not (home / "storage").is_dir():
        raise SystemExit(f"{home}: no Dagster instance storage there (has `make demo` run with this KINETICS_HOME?)")
    with tempfile.TemporaryDirectory(prefix="bench-demo-time-") as tmp:
        copy = Path(tmp) / "dagster_home"
        shutil.copytree(home, copy)
        with dg.DagsterInstance.from_config(str(copy)) as instance:
            yield instance


def step_timings(instance: dg.DagsterInstance, run_id: str, job: str, partition: str | None) -> list[StepTiming]:
    """The steps of one run from its STEP_* and ASSET_MATERIALIZATION events."""
    events = instance.all_logs(run_id, of_type=STARTS | set(ENDS) | {dg.DagsterEventType.ASSET_MATERIALIZATION})
    started: dict[str, float] = {}
    seconds: dict[str, float] = defaultdict(float)
    status: dict[str, str] = {}
    assets: dict[str, list[str]] = defaultdict(list)
    for event in sorted(events, key=lambda e: e.timestamp):
        kind, step = event.dagster_event_type, event.step_key
        if kind in STARTS:
            started[step] = event.timestamp
            status[step] = "running"
        elif kind in ENDS and step in started:
            seconds[step] += event.timestamp - started.pop(step)
            status[step] = ENDS[kind]
        elif kind == dg.DagsterEventType.ASSET_MATERIALIZATION:
            key = event.dagster_event.asset_key.to_user_string()
            if key not in assets[step]:
                assets[step].append(key)
    return [StepTiming(job, run_id, partition, step, tuple(assets[step]) or (step,), seconds[step], status[step])
            for step in status]


def demo_timings(instance: dg.DagsterInstance) -> tuple[list[RunTiming], list[StepTiming], list[tuple[float, float]]]:
    """Every finished run and its steps, and the (start, end) of every finished sensor or schedule tick."""
    runs, steps = [], []
    for record in instance.get_run_records():
        run = record.dagster_run
        if record.start_time is None or record.end_time is None:
            continue  # never started, or still running: no wall time to count
        runs.append(RunTiming(run.job_name, run.run_id, record.start_time, record.end_time))
        steps += step_timings(instance, run.run_id, run.job_name, run.tags.get("dagster/partition"))
    ticks = [(tick.timestamp, tick.end_timestamp)
             for state in instance.all_instigator_state()
             for tick in instance.get_ticks(state.instigator_origin_id, state.selector_id)
             if tick.end_timestamp is not None]
    return sorted(runs, key=lambda r: r.start), steps, sorted(ticks)


def covered_seconds(intervals: list[tuple[float, float]]) -> float:
    """Seconds covered by the union of the intervals (overlapping runs count once)."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def by_job(runs: list[RunTiming], steps: list[StepTiming]) -> list[dict]:
    """Per job: runs, summed run wall time, its union, summed step time, and what the run spent outside steps."""
    rows = []
    for job in {run.job for run in runs}:
        mine = [run for run in runs if run.job == job]
        step_s = sum(step.seconds for step in steps if step.job == job)
        run_s = sum(run.end - run.start for run in mine)
        rows.append({"job": job, "runs": len(mine), "run_s": run_s,
                     "wall_s": covered_seconds([(run.start, run.end) for run in mine]), "step_s": step_s,
                     "outside_steps_s": run_s - step_s, "first": min(run.start for run in mine)})
    return sorted(rows, key=lambda row: -row["run_s"])


def by_asset(steps: list[StepTiming]) -> list[dict]:
    """Per asset (the assets of one multi-asset step together): steps, summed, median and longest step time."""
    grouped: dict[str, list[StepTiming]] = defaultdict(list)
    for step in steps:
        grouped[" + ".join(step.assets)].append(step)
    rows = [{"asset": asset, "jobs": sorted({s.job for s in mine}), "steps": len(mine),
             "failed": sum(s.status != "success" for s in mine), "total_s": sum(s.seconds for s in mine),
             "median_s": statistics.median(s.seconds for s in mine), "max_s": max(s.seconds for s in mine)}
            for asset, mine in grouped.items()]
    return sorted(rows, key=lambda row: -row["total_s"])


def render(home: Path, runs: list[RunTiming], steps: list[StepTiming], ticks: list[tuple[float, float]],
           top: int) -> str:
    if not runs:
        raise SystemExit(f"{home}: the instance holds no finished run")
    span = max(max(run.end for run in runs), max((end for _, end in ticks), default=0.0)) - runs[0].start
    run_wall = covered_seconds([(run.start, run.end) for run in runs])
    busy = covered_seconds([(run.start, run.end) for run in runs] + ticks)
    step_total = sum(step.seconds for step in steps)
    began = datetime.datetime.fromtimestamp(runs[0].start, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    jobs, assets = by_job(runs, steps), by_asset(steps)
    lines = [
        SECTION, "",
        f"`bench/bench_demo_time.py --home {home}` ({datetime.date.today().isoformat()}; {machine_info()}).",
        (f"The demo began its first run at {began}; from then to its last run's or tick's end: **{span:.0f} s**. "
         f"Runs cover {run_wall:.0f} s of it ({run_wall / span:.0%}; {len(runs)} runs, overlapping ones counted "
         f"once), sensor ticks {covered_seconds(ticks):.0f} s ({len(ticks)} ticks); the remaining "
         f"{span - busy:.0f} s ({(span - busy) / span:.0%}) is the demo's own code between them: the sandbox "
         "crowd writing votes, waits for the platform's confirmation of removals, pauses between rounds, "
         "and the read-backs that print the tables. The time before the first run (sandbox world and previous "
         "edition, instance start) is not in the event log."),
        "",
        "By stage (job), longest first; outside steps = run wall time not inside any step (run launch, resource "
        "initialisation, event and I/O-manager writes):",
        "",
        "| job | runs | run s (sum) | wall s (union) | step s | outside steps s | share of run time |",
        "|---|---|---|---|---|---|---|",
    ]
    total_run_s = sum(row["run_s"] for row in jobs)
    for row in jobs:
        lines.append(f"| {row['job']} | {row['runs']} | {row['run_s']:.1f} | {row['wall_s']:.1f} | "
                     f"{row['step_s']:.1f} | {row['outside_steps_s']:.1f} | {row['run_s'] / total_run_s:.0%} |")
    lines += [
        "",
        f"By asset (from the step events; summed over partitions and attempts), the top {top} of {len(assets)}:",
        "",
        "| asset | jobs | steps | not succeeded | total s | median s | max s | share of step time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in assets[:top]:
        lines.append(f"| {row['asset']} | {', '.join(row['jobs'])} | {row['steps']} | {row['failed']} | "
                     f"{row['total_s']:.1f} | {row['median_s']:.2f} | {row['max_s']:.2f} | "
                     f"{row['total_s'] / step_total:.0%} |")
    rest = assets[top:]
    if rest:
        lines.append(f"| {len(rest)} others | | {sum(r['steps'] for r in rest)} | {sum(r['failed'] for r in rest)} "
                     f"| {sum(r['total_s'] for r in rest):.1f} | | | {sum(r['total_s'] for r in rest) / step_total:.0%} |")
    leaders = ", ".join(f"{row['asset']} {row['total_s'] / step_total:.0%}" for row in assets[:3])
    lines += ["", f"Steps total {step_total:.0f} s; the top three assets take {leaders} of it."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="the KINETICS_HOME where `make demo` ran")
    parser.add_argument("--top", type=int, default=10, help="assets listed one by one; the rest in one row")
    parser.add_argument("--write-results", action="store_true", help="update the section in bench/RESULTS.md")
    args = parser.parse_args()
    with instance_copy(args.home.resolve()) as instance:
        runs, steps, ticks = demo_timings(instance)
    report = render(args.home, runs, steps, ticks, args.top)
    print(report)
    if args.write_results:
        replace_section(SECTION, report)


if __name__ == "__main__":
    main()
