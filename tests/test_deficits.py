"""Which classes are replenished and how many candidates each gets."""

import pandas as pd
import pytest

from kinetics_assets.acquisition.deficits import (
    candidate_budget,
    class_deficits,
    measured_yields,
    paper_yield_priors,
    round_progress,
)
from kinetics_assets.voting.yields import class_yields


@pytest.mark.parametrize(
    "deficit, expected_yield, safety, cap, budget",
    [
        (10, 0.25, 1.0, 1000, 40),  # 10 / 0.25
        (10, 0.25, 1.5, 1000, 60),  # with a 50 % margin
        (7, 0.3793, 1.5, 1000, 28),  # ceil(27.68): never round a budget down
        (10, 0.01, 1.5, 500, 500),  # capped
        (0, 0.5, 1.5, 1000, 0),  # no deficit, no candidates
        (-3, 0.5, 1.5, 1000, 0),  # above the minimum
    ],
)
def test_candidate_budget_arithmetic(deficit, expected_yield, safety, cap, budget):
    assert candidate_budget(deficit, expected_yield, safety, cap) == budget


def test_impossible_yield_is_refused():
    with pytest.raises(ValueError, match="expected yield must be in"):
        candidate_budget(5, 0.0, 1.5, 100)


def test_yield_source_prefers_history_then_the_note_then_the_default():
    counts = pd.Series({"stacking dice": 20, "zumba": 10, "abseiling": 24, "luge": 30})
    frame = class_deficits(
        counts,
        24,
        history=pd.Series({"zumba": 0.5}),
        priors=paper_yield_priors(),
        default_yield=0.1,
        safety_factor=1.5,
        cap=1000,
    ).set_index("class_name")
    assert frame.loc["zumba", ["yield_source", "deficit", "candidate_budget"]].tolist() == ["history", 14, 42]
    assert frame.loc["stacking dice", "yield_source"] == "note_appendix_a"
    assert frame.loc["stacking dice", "expected_yield"] == pytest.approx(0.3793)
    assert frame.loc["stacking dice", "candidate_budget"] == 16  # ceil(4 * 1.5 / 0.3793)
    assert frame.loc["abseiling", ["deficit", "candidate_budget", "yield_source"]].tolist() == [0, 0, "default"]
    assert frame.loc["luge", "deficit"] == 0  # above the minimum: nothing to do
    assert list(frame.index[:2]) == ["zumba", "stacking dice"]  # largest deficit first


def test_priors_cover_the_notes_123_classes():
    priors = paper_yield_priors()
    assert len(priors) == 123 and priors["twiddling fingers"] == pytest.approx(0.0202)


def _deficits(counts, **given):
    return class_deficits(pd.Series(counts), 24, default_yield=0.1, safety_factor=1.0, cap=1000, **given) \
        .set_index("class_name")


def test_accepted_and_pending_clips_count_towards_the_minimum():
    frame = _deficits({"zumba": 10, "luge": 10}, accepted=pd.Series({"zumba": 4}), pending=pd.Series({"zumba": 6}))
    assert frame.loc["zumba", ["clips", "accepted", "pending", "deficit", "candidate_budget"]].tolist() == [
        10, 4, 6, 4, 40]  # 24 - (10 + 4 + 6), at the default yield
    assert frame.loc["luge", "deficit"] == 14 and frame.loc["luge", "status"] == "short"


def test_a_class_whose_votes_are_out_is_not_asked_for_the_same_clips_again():
    frame = _deficits({"zumba": 10}, pending=pd.Series({"zumba": 14}))
    assert frame.loc["zumba", ["deficit", "candidate_budget", "status"]].tolist() == [0, 0, "at_minimum"]
    assert frame.loc["zumba", "reason"] == "surviving + accepted + pending = 24 >= minimum 24"


def test_an_exhausted_supply_is_a_status_with_its_reason_not_an_error():
    why = "candidate supply exhausted: search found no untried usable video"
    frame = _deficits({"zumba": 10, "luge": 30}, exhausted={"zumba": why, "luge": why})
    assert frame.loc["zumba", ["deficit", "status", "reason"]].tolist() == [14, "supply_exhausted", why]
    assert frame.loc["luge", "status"] == "at_minimum"  # at the minimum whatever the supply


def _decisions(rows):
    return pd.DataFrame(rows, columns=["clip_id", "youtube_id", "decision", "class_name"])


def test_round_progress_counts_accepted_videos_once_and_undecided_fetched_clips_as_pending():
    fetched = pd.DataFrame({"clip_id": ["a1", "a2", "b1", "c1", "d1", "e1"],
                            "status": ["done", "done", "done", "done", "done", "permanent_failure"]})
    decisions = _decisions([("a1", "AAAAAAAAAAA", "accepted", "zumba"), ("a2", "AAAAAAAAAAA", "accepted", "zumba"),
                            ("b1", "BBBBBBBBBBB", "rejected", "zumba"), ("c1", "CCCCCCCCCCC", "pending", "zumba"),
                            ("x1", "XXXXXXXXXXX", "accepted", "zumba")])
    # X is accepted but already one of the edition's clips (a release added it): it is not counted twice
    assert round_progress(fetched, decisions, uncounted={"XXXXXXXXXXX"}) == (1, 2)  # A; c1 (votes out), d1 (none)
    assert round_progress(fetched, None, uncounted=set()) == (0, 5)  # fetched, not yet voted on
    assert round_progress(None, None, uncounted=set()) == (0, 0)
    # A gone since it was accepted (or dropped at final filtering as a duplicate) no longer fills the class
    assert round_progress(fetched, decisions, uncounted={"XXXXXXXXXXX", "AAAAAAAAAAA"}) == (0, 2)


def test_measured_yield_from_the_class_yields_table_comes_before_the_note():
    decisions = _decisions([(f"c{i}", f"V{i:010d}", "accepted" if i < 2 else "rejected", "stacking dice")
                            for i in range(8)] + [("z", "ZZZZZZZZZZZ", "pending", "zumba")])
    yields = class_yields(decisions, published={"stacking dice": 1})
    history = measured_yields(yields)
    assert history.to_dict() == {"stacking dice": pytest.approx(1 / 8)}  # published / decided; zumba: none decided
    frame = _deficits({"stacking dice": 20, "twiddling fingers": 20, "zumba": 20}, history=history,
                      priors=paper_yield_priors())
    assert frame.loc["stacking dice", ["yield_source", "candidate_budget"]].tolist() == ["history", 32]  # 4 / (1/8)
    assert frame.loc["twiddling fingers", "yield_source"] == "note_appendix_a"
    assert frame.loc["zumba", "yield_source"] == "default"  # votes out, none decided: no measured yield yet
    unpublished = measured_yields(class_yields(decisions))
    assert unpublished["stacking dice"] == pytest.approx(2 / 8)  # before a release: P(voted positive)
    assert measured_yields(None).empty
