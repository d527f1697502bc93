"""A run whose process was killed with -9 is marked failed at the next start; a live run is left alone.

``execute_in_process`` (the demo's way of running jobs) has no run monitoring: without the sweep the killed run
stays STARTED in the UI forever.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from kinetics_assets.instance import fail_dead_runs

pytestmark = pytest.mark.timeout(180)

# A job whose only op says it is running, then waits to be killed.
_RUN_FOREVER = """
import sys, time
from pathlib import Path
import dagster as dg

@dg.op
def wait_for_the_kill():
    Path(sys.argv[1]).write_text("running")
    time.sleep(600)

@dg.job
def run_forever():
    wait_for_the_kill()

run_forever.execute_in_process(instance=dg.DagsterInstance.get())
"""


def _start_run(home: Path, marker: Path) -> subprocess.Popen:
    run = subprocess.Popen([sys.executable, "-c", _RUN_FOREVER, str(marker)], env={**os.environ, "DAGSTER_HOME": str(home)},
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert run.poll() is None, run.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.05)
    return run


def test_runs_of_killed_processes_are_marked_failed_and_live_ones_are_not(tmp_path: Path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    killed = _start_run(home, tmp_path / "killed")
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    live = _start_run(home, tmp_path / "live")
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            assert [run.status for run in instance.get_runs()] == [dg.DagsterRunStatus.STARTED] * 2, \
                "both runs look started before the sweep"
            [dead] = fail_dead_runs(instance)
            statuses = {run.run_id: run.status for run in instance.get_runs()}
            assert sorted(statuses.values(), key=str) == [dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.STARTED]
            assert statuses[dead] == dg.DagsterRunStatus.FAILURE
            failure = instance.get_records_for_run(dead, of_type=dg.DagsterEventType.RUN_FAILURE).records
            assert f"pid {killed.pid}" in failure[0].event_log_entry.dagster_event.message
            assert fail_dead_runs(instance) == [], "a second sweep finds nothing to do"
    finally:
        os.killpg(live.pid, signal.SIGKILL)
        live.wait()
