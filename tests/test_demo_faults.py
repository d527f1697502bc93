"""`kinetics demo --faults`: what a run left unfinished is found, so the demo materializes again from there.

Protects: a clip asset whose transient-failure check failed, a link-rot check with videos of unknown status, and
an asset the run never materialized each count as unfinished (and the first of them in dependency order is where
the next round starts); a run that finished everything needs no other round.
"""

from __future__ import annotations

import dagster as dg

from kinetics_assets.acquisition.assets import TRANSIENT_CHECK
from kinetics_assets.demo import left_unfinished


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
