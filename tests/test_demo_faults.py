"""`kinetics demo --faults`: what a run left unfinished is found, so the demo materializes again from there.

Protects: a clip asset whose transient-failure check failed, a link-rot check with videos of unknown status, and
an asset the run never materialized each count as unfinished (and the first of them in dependency order is where
the next round starts); a run that finished everything needs no other round; the next round re-runs that asset
and what follows, never what finished before it; the rounds are bounded; `--faults` reaches the jobs' platform.
"""

from __future__ import annotations

from collections import Counter

import dagster as dg
import pytest

from kinetics_assets.acquisition.assets import TRANSIENT_CHECK
from kinetics_assets.demo import ROUNDS, left_unfinished, materialize_until_finished, with_faults
from resources.sandbox.resource import SandboxPlatform


def _run(transient_left: int, unknown: int, selection: list[str]) -> dg.ExecuteInProcessResult:
    @dg.asset
    def probed() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"unknown_after_retries": unknown})

    @dg.asset(deps=[probed], check_specs=[dg.AssetCheckSpec(TRANSIENT_CHECK, asset="fetched")])
    def fetched():
        yield dg.MaterializeResult()
        yield dg.AssetCheckResult(check_name=TRANSIENT_CHECK, passed=transient_left == 0,
                                  severity=dg.AssetCheckSeverity.WARN)

    @dg.asset(deps=[fetched])
    def published() -> None:
        return None

    return dg.materialize([probed, fetched, published], selection=selection, instance=dg.DagsterInstance.ephemeral())


ALL = ["probed", "fetched", "published"]
KEYS = [dg.AssetKey(name) for name in ALL]


def test_a_run_that_finished_everything_needs_no_other_round():
    assert left_unfinished(_run(transient_left=0, unknown=0, selection=ALL), KEYS) is None


def test_transient_failures_left_by_a_fetch_make_it_the_next_start():
    assert left_unfinished(_run(transient_left=2, unknown=0, selection=ALL), KEYS) == dg.AssetKey("fetched")


def test_videos_of_unknown_availability_make_the_check_the_next_start():
    assert left_unfinished(_run(transient_left=2, unknown=1, selection=ALL), KEYS) == dg.AssetKey("probed")


def test_an_asset_the_run_did_not_materialize_is_unfinished():
    result = _run(transient_left=0, unknown=0, selection=["probed", "fetched"])
    assert left_unfinished(result, KEYS) == dg.AssetKey("published")


def _flaky_definitions(failing_rounds: int, calls: Counter) -> dg.Definitions:
    """probed -> fetched -> published; fetched leaves transient failures in its first `failing_rounds` runs."""
    @dg.asset
    def probed() -> None:
        calls["probed"] += 1

    @dg.asset(deps=[probed], check_specs=[dg.AssetCheckSpec(TRANSIENT_CHECK, asset="fetched")])
    def fetched():
        calls["fetched"] += 1
        yield dg.MaterializeResult()
        yield dg.AssetCheckResult(check_name=TRANSIENT_CHECK, passed=calls["fetched"] > failing_rounds,
                                  severity=dg.AssetCheckSeverity.WARN)

    @dg.asset(deps=[fetched])
    def published() -> None:
        calls["published"] += 1

    return dg.Definitions(assets=[probed, fetched, published], jobs=[dg.define_asset_job("flaky", selection=ALL)])


def test_each_round_starts_at_the_asset_left_unfinished(tmp_path):
    calls = Counter()
    rounds = materialize_until_finished(_flaky_definitions(2, calls), dg.DagsterInstance.ephemeral(), "flaky",
                                        echo=lambda line: None, pause_s=0)
    assert rounds == 3
    assert calls == {"probed": 1, "fetched": 3, "published": 3}  # published ran after each fetch; probed once


def test_rounds_are_bounded():
    calls = Counter()
    with pytest.raises(RuntimeError, match=f"still left at fetched after {ROUNDS} rounds"):
        materialize_until_finished(_flaky_definitions(ROUNDS, calls), dg.DagsterInstance.ephemeral(), "flaky",
                                   echo=lambda line: None, pause_s=0)
    assert calls["fetched"] == ROUNDS


def test_faults_reach_the_platform_the_jobs_use(tmp_path):
    @dg.asset
    def rate_seen(video_platform: SandboxPlatform) -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"fault_rate": video_platform.fault_rate})

    defs = dg.Definitions(assets=[rate_seen], jobs=[dg.define_asset_job("seen", selection=["rate_seen"])],
                          resources={"video_platform": SandboxPlatform(cache_dir=str(tmp_path))})
    result = with_faults(defs, 0.2).resolve_job_def("seen").execute_in_process(instance=dg.DagsterInstance.ephemeral())
    [event] = result.get_asset_materialization_events()
    assert event.materialization.metadata["fault_rate"].value == 0.2
