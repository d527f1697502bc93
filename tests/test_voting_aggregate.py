"""Acceptance (>= 3 yes), rater quality on gold, Dawid–Skene and its agreement, and the Appendix A yield table."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pandas as pd
import pytest

from kinetics_assets.voting.aggregate import (
    AcceptanceRule,
    agreement,
    dawid_skene_decisions,
    decide,
    rater_quality,
    threshold_decisions,
)
from kinetics_assets.voting.tasks import build_tasks
from kinetics_assets.voting.yields import (
    YIELD_COLUMNS,
    class_yields,
    paper_yields,
    yields_markdown,
)
from resources.sandbox.crowd import CrowdBehaviour, rater_pool

CLASS = "stacking dice"


def tasks_frame(*kinds: str, class_name: str = CLASS) -> pd.DataFrame:
    answers = {"candidate": "", "gold_positive": "yes", "gold_negative": "no"}
    return pd.DataFrame({"task_id": [f"t{i}" for i in range(len(kinds))], "clip_id": [f"c{i}" for i in range(len(kinds))],
                         "class_name": class_name, "kind": list(kinds), "gold_answer": [answers[k] for k in kinds]})


def votes_frame(answers_by_task: dict[str, list[str]]) -> pd.DataFrame:
    rows = [{"task_id": task, "rater_id": f"r{i}", "answer": answer}
            for task, answers in answers_by_task.items() for i, answer in enumerate(answers)]
    return pd.DataFrame(rows, columns=["task_id", "rater_id", "answer"])


def decision_of(answers: list[str], rule: AcceptanceRule) -> str:
    return threshold_decisions(votes_frame({"t0": answers}), tasks_frame("candidate"), rule)["decision"].item()


@pytest.mark.parametrize("answers, rule, expected", [
    (["yes", "yes", "yes"], AcceptanceRule(3, 3), "accepted"),                      # exactly 3 yes
    (["yes", "yes", "unsure"], AcceptanceRule(3, 3), "rejected"),                   # unsure is not a yes
    (["yes", "yes", "no", "unsure", "yes"], AcceptanceRule(3, 5), "accepted"),
    (["yes", "yes", "yes", "no", "no", "no"], AcceptanceRule(3, 6), "accepted"),    # a tie still has 3 yes
    (["yes", "yes", "no", "no"], AcceptanceRule(3, 4), "rejected"),                 # a tie short of 3 yes
    (["unsure"] * 5, AcceptanceRule(3, 5), "rejected"),                             # all unsure
    (["unsure", "unsure"], AcceptanceRule(3, 5), "pending"),                        # could still get 3 yes
    (["yes", "yes"], AcceptanceRule(3, 5), "pending"),                              # fewer raters than the threshold
    (["no", "no", "no"], AcceptanceRule(3, 5), "rejected"),                         # 3 yes out of reach
    ([], AcceptanceRule(3, 5), "pending"),
])
def test_threshold_rule(answers, rule, expected):
    assert decision_of(answers, rule) == expected


def test_rule_needs_enough_raters():
    with pytest.raises(ValueError, match="min_yes <= raters_per_clip"):
        AcceptanceRule(min_yes=3, raters_per_clip=2)


def test_gold_is_excluded_and_ignored_raters_do_not_count():
    tasks = tasks_frame("candidate", "gold_positive", "gold_negative")
    votes = votes_frame({"t0": ["yes", "yes", "yes"], "t1": ["yes"] * 3, "t2": ["no"] * 3})
    decisions = threshold_decisions(votes, tasks, AcceptanceRule(3, 3))
    assert decisions["task_id"].tolist() == ["t0"]
    assert decisions[["votes", "yes", "no", "unsure", "decision"]].values.tolist()[0] == [3, 3, 0, 0, "accepted"]
    assert threshold_decisions(votes, tasks, AcceptanceRule(3, 3), ignore_raters={"r2"})["decision"].item() \
        == "pending"
    with pytest.raises(ValueError, match="unknown aggregation method"):
        decide(votes, tasks, method="majority")


def test_rater_quality_counts_gold_and_flags_spammers():
    kinds = ["gold_positive"] * 10 + ["gold_negative"] * 10 + ["candidate"]
    tasks = tasks_frame(*kinds)
    rows = []
    for i, kind in enumerate(kinds):
        right = {"gold_positive": "yes", "gold_negative": "no", "candidate": "yes"}[kind]
        rows.append({"task_id": f"t{i}", "rater_id": "good", "answer": right})
        rows.append({"task_id": f"t{i}", "rater_id": "coin", "answer": "yes"})
        rows.append({"task_id": f"t{i}", "rater_id": "shy", "answer": "unsure" if i < 4 else right})
    rows.append({"task_id": "t20", "rater_id": "newcomer", "answer": "no"})
    quality = rater_quality(pd.DataFrame(rows), tasks, spammer_below=0.7, min_gold_votes=10).set_index("rater_id")
    assert quality.loc["good", ["votes", "gold_votes", "gold_correct", "accuracy"]].tolist() == [21, 20, 20, 1.0]
    assert quality.loc["coin", ["positive_accuracy", "negative_accuracy", "accuracy"]].tolist() == [1.0, 0.0, 0.5]
    assert quality.loc["shy", "accuracy"] == pytest.approx(16 / 20)            # unsure on gold is not correct
    assert quality.loc["coin", "flagged_spammer"] and not quality.loc["good", "flagged_spammer"]
    assert quality.loc["newcomer", "gold_votes"] == 0 and math.isnan(quality.loc["newcomer", "accuracy"])
    assert not quality.loc["newcomer", "flagged_spammer"]
    assert quality.loc["good", "ci_low"] < 1.0 <= quality.loc["good", "ci_high"] + 1e-12


def test_rater_quality_without_votes_or_gold():
    tasks = tasks_frame("candidate", "gold_positive")
    assert rater_quality(votes_frame({}), tasks).empty
    quality = rater_quality(votes_frame({"t0": ["yes", "no"]}), tasks)
    assert quality["gold_votes"].tolist() == [0, 0] and quality["accuracy"].isna().all()
    assert not quality["flagged_spammer"].any()
    assert dawid_skene_decisions(votes_frame({}), tasks)["decision"].tolist() == ["pending"]


@pytest.fixture(scope="module")
def simulated():
    """A simulated crowd (10 raters, 2 spammers, 4 votes per task) on 200 candidates and 900 gold tasks."""
    def clips(prefix: str, n: int) -> pd.DataFrame:
        ids = [f"{prefix}{i:08d}" for i in range(n)]
        return pd.DataFrame({"clip_id": [f"{v}_000000_000010" for v in ids], "youtube_id": ids,
                             "time_start": 0.0, "time_end": 10.0, "clip_location": ids})
    edition = pd.concat([clips("pos", 450).assign(label=CLASS), clips("neg", 450).assign(label="luge")])
    tasks = build_tasks(CLASS, clips("new", 200), edition, gold_share=900 / 1100)
    shown = {**{v: CLASS for v in edition["youtube_id"] if v.startswith("pos")},
             **{v: "luge" for v in edition["youtube_id"] if v.startswith("neg")},
             **{f"new{i:08d}": CLASS for i in range(0, 200, 3)}}   # a third of the candidates show the class
    crowd = CrowdBehaviour(seed=11, raters=tuple(rater_pool(11, 10, 0.2, 0.85, 0.95, 0.5)), raters_per_task=4,
                           unsure_rate=0.02, start=datetime(2020, 6, 1, tzinfo=UTC),
                           difficulty=lambda name: 0.0)
    simulated_votes = crowd.answer(tasks.to_dict(orient="records"), lambda video, start, end: shown.get(video))
    votes = pd.DataFrame([{"task_id": v.task["task_id"], "rater_id": str(v.user_id), "answer": v.answer}
                          for v in simulated_votes])
    return crowd, tasks, votes, shown


def test_gold_accuracy_estimates_match_the_simulated_raters(simulated):
    crowd, tasks, votes, _ = simulated
    quality = rater_quality(votes, tasks).set_index("rater_id")
    assert (quality["gold_votes"] > 250).all()
    for rater in crowd.raters:
        estimate = quality.loc[str(rater.user_id)]
        assert estimate["accuracy"] == pytest.approx(crowd.true_accuracy(rater, CLASS), abs=0.07)
        assert estimate["flagged_spammer"] == rater.spammer


def test_dawid_skene_runs_and_agrees_with_the_threshold_rule(simulated):
    _, tasks, votes, shown = simulated
    rule = AcceptanceRule(3, 4)
    majority = decide(votes, tasks, "threshold", rule)
    ds = decide(votes, tasks, "dawid_skene", rule)
    assert set(ds["decision"]) <= {"accepted", "rejected"} and len(ds) == 200
    report = agreement(majority, ds)
    assert report.clips == 200 and int(report.confusion.to_numpy().sum()) == 200
    assert report.confusion.index.name == "threshold" and report.confusion.columns.name == "dawid_skene"
    assert report.share_same >= 0.85
    truth = ds["clip_id"].str[:11].map(shown).eq(CLASS)
    assert (ds["decision"].eq("accepted") == truth).mean() >= 0.9   # DS with gold recovers the truth


def test_dawid_skene_leaves_clips_without_yes_or_no_pending():
    tasks = tasks_frame("candidate", "candidate", "gold_positive")
    votes = votes_frame({"t0": ["yes", "yes", "no"], "t1": ["unsure", "unsure"], "t2": ["yes", "yes", "yes"]})
    decisions = dawid_skene_decisions(votes, tasks).set_index("task_id")["decision"]
    assert decisions.to_dict() == {"t0": "accepted", "t1": "pending"}
    assert agreement(threshold_decisions(votes, tasks, AcceptanceRule(2, 3)), dawid_skene_decisions(votes, tasks)) \
        .clips == 1


def yields_input() -> pd.DataFrame:
    rows = [("stacking dice", "accepted")] * 3 + [("stacking dice", "rejected")] * 7 + \
           [("steering car", "accepted")] * 6 + [("steering car", "rejected")] * 4 + \
           [("steering car", "pending")] * 5 + [("abseiling", "rejected")] * 2 + [("spinning plates", "pending")]
    return pd.DataFrame(rows, columns=["class_name", "decision"])


def test_class_yields_without_published_counts_leave_p_published_empty():
    table = class_yields(yields_input())
    assert list(table.columns) == YIELD_COLUMNS
    table = table.set_index("class_name")
    assert table.loc["steering car", ["candidates", "decided", "pending", "accepted"]].tolist() == [15, 10, 5, 6]
    assert table.loc["steering car", "p_voted_positive"] == pytest.approx(0.6)
    assert table.loc["stacking dice", "p_voted_positive"] == pytest.approx(0.3)
    assert table["p_published"].isna().all() and table["published"].isna().all()
    assert math.isnan(table.loc["spinning plates", "p_voted_positive"])
    assert table.index.tolist() == ["steering car", "stacking dice", "abseiling", "spinning plates"]  # by P(voted +)
    assert table.loc["stacking dice", ["paper_rank", "paper_p_voted_positive", "paper_p_published"]].tolist() == \
        [1, 0.3868, 0.3793]
    assert pd.isna(table.loc["abseiling", "paper_rank"])  # not in the note's list


def test_class_yields_with_published_counts_rank_like_the_note():
    table = class_yields(yields_input(), published={"stacking dice": 3, "steering car": 2, "abseiling": 0})
    assert table["class_name"].tolist()[:3] == ["stacking dice", "steering car", "abseiling"]
    assert table["rank"].tolist() == [1, 2, 3, 4]
    assert table.set_index("class_name").loc["steering car", "p_published"] == pytest.approx(0.2)
    with pytest.raises(ValueError, match="exceed accepted"):
        class_yields(yields_input(), published={"stacking dice": 4})


def test_yields_markdown_shows_percentages_like_the_note():
    markdown = yields_markdown(class_yields(yields_input()))
    assert "| stacking dice" in markdown and "30.00%" in markdown and "38.68%" in markdown and "nan" not in markdown
    assert len(paper_yields()) == 123
