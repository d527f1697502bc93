"""One sensor tick through Dagster's own daemon code, for the demo: what ``dagster dev``'s sensor daemon does.

The demo must not evaluate sensors as plain functions: then the instance holds no tick and no cursor, and the
daemon, once the UI opens, evaluates them afresh and launches again every run the demo already did. Here the
daemon's iteration (``execute_sensor_iteration``) evaluates every running sensor of the code location, records the
tick with its run requests and cursor in the instance, and submits the runs with their run keys to the instance's
run queue; the daemon's run-queue iteration launches them through the instance's launcher (a run worker per run,
as in the UI); then we wait for those runs.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import dagster as dg
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.scheduler.instigation import InstigatorTick, TickStatus
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon
from dagster._daemon.sensor import execute_sensor_iteration

POLL_S = 1.0
RUNS_TIMEOUT_S = 1800.0  # a tick's runs that have not finished by then have hung


@contextmanager
def output_into(log: Path) -> Iterator[None]:
    """Send this process's stdout and stderr (file descriptors, so child processes too) into `log`: the code
    server and the run workers it starts log every event to the console, which the demo keeps for its summary."""
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush(), sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log, "ab") as sink:
        os.dup2(sink.fileno(), 1), os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush(), sys.stderr.flush()
            os.dup2(saved[0], 1), os.dup2(saved[1], 2)
            os.close(saved[0]), os.close(saved[1])


@contextmanager
def workspace_context(instance: dg.DagsterInstance, workspace: Path) -> Iterator[WorkspaceProcessContext]:
    """The code location of `workspace` served by its own code server, as the daemon loads it."""
    with WorkspaceProcessContext(instance, WorkspaceFileTarget(paths=[str(workspace)])) as context:
        errors = {name: entry.load_error for name, entry in
                  context.create_request_context().get_code_location_entries().items() if entry.load_error}
        if errors:
            raise RuntimeError(f"code location(s) of {workspace} failed to load: {errors}")
        yield context


def _sensor_ids(context: WorkspaceProcessContext) -> dict[str, tuple[str, str]]:
    """Each sensor's (origin id, selector id), the keys of its state and ticks in the instance."""
    ids = {}
    for entry in context.create_request_context().get_code_location_entries().values():
        for repository in entry.code_location.get_repositories().values():
            for sensor in repository.get_sensors():
                ids[sensor.name] = (sensor.get_remote_origin_id(), sensor.selector_id)
    return ids


def tick_sensors(context: WorkspaceProcessContext, logger: logging.Logger) -> dict[str, InstigatorTick]:
    """One iteration of the daemon's sensor loop over the workspace: every running sensor whose minimum interval
    has passed ticks once. Returns each sensor's tick of this iteration (a sensor still in its interval has none);
    a tick that failed raises with the sensor's error."""
    instance = context.instance
    started = time.time()
    for error in execute_sensor_iteration(context, logger, threadpool_executor=None, submit_threadpool_executor=None):
        if error is not None:
            raise RuntimeError(f"the sensor daemon failed: {error.to_string()}")
    ticks = {}
    for name, (origin_id, selector_id) in _sensor_ids(context).items():
        for tick in instance.get_ticks(origin_id, selector_id, after=started - 1):
            if tick.instigator_type == InstigatorType.SENSOR and tick.timestamp >= started:
                ticks.setdefault(name, tick)  # newest first
    for name, tick in ticks.items():
        if tick.status == TickStatus.FAILURE:
            raise RuntimeError(f"sensor {name} failed its tick: {tick.error.to_string() if tick.error else ''}")
    return ticks


def _drain(iterator) -> None:
    for error in iterator:
        if error is not None:
            raise RuntimeError(f"the run queue daemon failed: {error.to_string()}")


def run_queued(context: WorkspaceProcessContext, run_ids: list[str], timeout_s: float = RUNS_TIMEOUT_S) -> None:
    """Launch the queued runs as the daemon's run queue does (within the instance's concurrency limits) and wait
    until every one finished; raise naming the runs that failed (or have not finished in time)."""
    instance = context.instance
    deadline = time.monotonic() + timeout_s
    with QueuedRunCoordinatorDaemon(interval_seconds=POLL_S) as queue:
        while True:
            runs = instance.get_runs(filters=dg.RunsFilter(run_ids=run_ids)) if run_ids else []
            if all(run.is_finished for run in runs):
                break
            if time.monotonic() > deadline:
                late = [run.run_id for run in runs if not run.is_finished]
                raise RuntimeError(f"runs not finished after {timeout_s:g} s: {', '.join(late)}")
            if any(run.status == dg.DagsterRunStatus.QUEUED for run in runs):
                _drain(queue.run_iteration(context))
            time.sleep(POLL_S)
    failed = [f"{run.job_name}[{run.tags.get('dagster/partition', '')}] {run.run_id} ({run.status.value})"
              for run in runs if run.status != dg.DagsterRunStatus.SUCCESS]
    if failed:
        raise RuntimeError(f"runs launched by the sensors did not succeed: {'; '.join(failed)}")
