"""Which classes are replenished and how many candidates each gets."""

import pandas as pd
import pytest

from kinetics_assets.acquisition.deficits import candidate_budget, class_deficits, paper_yield_priors


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
