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

from kinetics_assets.instance import ensure_dagster_home, fail_dead_runs

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


def test_a_new_instance_retries_dequeuing_a_run_its_code_server_did_not_answer_in_time(tmp_path, monkeypatch):
    """Under load the code server can miss the run queue's 60-s deadline; that must not fail the run outright."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("KINETICS_HOME", str(tmp_path))
    home = ensure_dagster_home()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        queue = instance.run_coordinator.get_run_queue_config()
        assert queue.max_user_code_failure_retries == 3 and queue.user_code_failure_retry_delay == 15
        assert not instance.telemetry_enabled
