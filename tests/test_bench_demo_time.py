"""bench/bench_demo_time.py: an asset's time is its step's, read from the run's STEP_START/STEP_SUCCESS events, on
a copy of the instance that leaves the demo's own untouched."""

import importlib.util
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

BENCH = Path(__file__).parents[1] / "bench"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("bench_demo_time", BENCH / "bench_demo_time.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module


@dg.asset
def quick() -> int:
    return 1


@dg.asset
def slow(quick: int) -> int:
    time.sleep(0.4)
    return quick + 1


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory) -> Path:
    """A KINETICS_HOME whose dagster_home holds one run that materialized `quick` then `slow`."""
    home = tmp_path_factory.mktemp("demo-home")
    (home / "dagster_home").mkdir()
    with dg.DagsterInstance.from_config(str(home / "dagster_home")) as instance:
        assert dg.materialize([quick, slow], instance=instance).success
    return home


def step_seconds_from_events(instance: dg.DagsterInstance, step: str) -> float:
    run = instance.get_run_records()[0].dagster_run
    events = {e.dagster_event_type: e.timestamp for e in instance.all_logs(run.run_id) if e.step_key == step}
    return events[dg.DagsterEventType.STEP_SUCCESS] - events[dg.DagsterEventType.STEP_START]


def test_asset_seconds_are_their_steps_start_to_success(bench, demo_home):
    with bench.instance_copy(demo_home) as instance:
        runs, steps, _ = bench.demo_timings(instance)
        expected = {name: step_seconds_from_events(instance, name) for name in ("quick", "slow")}
    assets = {row["asset"]: row for row in bench.by_asset(steps)}
    assert set(assets) == {"quick", "slow"}
    for name, seconds in expected.items():
        assert assets[name]["steps"] == 1 and assets[name]["total_s"] == pytest.approx(seconds)
    assert assets["slow"]["total_s"] >= 0.4 > assets["quick"]["total_s"]
    [job] = bench.by_job(runs, steps)
    assert job["runs"] == 1 and job["step_s"] == pytest.approx(sum(expected.values()))
    assert job["run_s"] >= job["step_s"]


def test_report_reads_a_copy_and_leaves_the_instance_as_it_was(bench, demo_home):
    storage = demo_home / "dagster_home"
    before = {p: p.stat().st_mtime_ns for p in storage.rglob("*")}
    with bench.instance_copy(demo_home) as instance:
        report = bench.render(demo_home, *bench.demo_timings(instance), top=1)
    assert {p: p.stat().st_mtime_ns for p in storage.rglob("*")} == before
    assert "| slow | __ephemeral_asset_job__ | 1 | 0 |" in report and "| 1 others | | 1 | 0 |" in report


def test_a_home_without_an_instance_is_named(bench, tmp_path):
    with pytest.raises(SystemExit, match=str(tmp_path)):
        with bench.instance_copy(tmp_path):
            pass
