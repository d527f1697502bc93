"""The demo's sensor step goes through the daemon's own tick, so the UI's daemon does not redo it.

Protects: the tick is recorded in the instance with its run requests (run keys, run ids) and the sensor's cursor;
the runs it requested are launched by the instance's launcher and finished before the step returns; a daemon tick
afterwards on the same instance launches no run (the issue: the UI relaunched all 6 crowd_votes runs the demo had
done), yet still launches a run for new input; a run that fails is reported by name; `kinetics ui` loads the
workspace the demo ticks (one location name: otherwise the UI's daemon would not find the demo's sensor state).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.scheduler.instigation import TickStatus
from typer.testing import CliRunner

from kinetics_assets import cli, process_group
from kinetics_assets.instance import WORKSPACE
from kinetics_assets.sensor_ticks import run_queued, tick_sensors, workspace_context

INBOX_WORKSPACE = Path(__file__).parent / "locations" / "inbox_workspace.yaml"
LOGGER = logging.getLogger("test_demo_sensors")


@pytest.fixture()
def inbox(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    monkeypatch.setenv("TEST_INBOX", str(folder))  # the code server and run workers inherit it
    return folder


def _next_interval() -> None:
    time.sleep(1.1)  # the test sensor's minimum interval


def test_a_daemon_tick_after_the_demos_sensor_step_launches_nothing(inbox, tmp_path):
    for name in ("a", "b"):
        (inbox / name).write_text("")
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance, \
            workspace_context(instance, INBOX_WORKSPACE) as context:
        tick = tick_sensors(context, LOGGER)["inbox_sensor"]
        assert tick.status == TickStatus.SUCCESS
        assert sorted(tick.run_keys) == ["a", "b"] and len(tick.run_ids) == 2 and tick.cursor == "b"
        run_queued(context, list(tick.run_ids))
        runs = instance.get_runs()
        assert {run.tags["dagster/run_key"] for run in runs} == {"a", "b"}
        assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
        [state] = [s for s in instance.all_instigator_state() if s.name == "inbox_sensor"]
        assert state.instigator_data.cursor == "b"

        _next_interval()
        again = tick_sensors(context, LOGGER)["inbox_sensor"]
        assert again.status == TickStatus.SKIPPED and not again.run_ids
        assert instance.get_runs_count() == 2

        (inbox / "c").write_text("")
        _next_interval()
        new = tick_sensors(context, LOGGER)["inbox_sensor"]
        assert new.run_keys == ["c"] and instance.get_runs_count() == 3
        run_queued(context, list(new.run_ids))


def test_a_failed_run_is_named(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance, \
            workspace_context(instance, INBOX_WORKSPACE) as context:
        run = instance.create_run_for_job(dg.GraphDefinition(name="broken", node_defs=[]).to_job(), run_id=None)
        instance.report_run_failed(run)
        with pytest.raises(RuntimeError, match=f"broken\\[\\] {run.run_id} \\(FAILURE\\)"):
            run_queued(context, [run.run_id], timeout_s=5)


def test_the_ui_loads_the_workspace_the_demo_ticks(monkeypatch):
    commands = []
    monkeypatch.setattr(process_group, "run_process_group", lambda command, env: commands.append(command) or 0)
    result = CliRunner().invoke(cli.app, ["ui"])
    assert result.exit_code == 0, result.output
    [command] = commands
    assert command[command.index("-w") + 1] == str(WORKSPACE)
