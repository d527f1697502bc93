"""From votes to decisions: the ">= 3 yes" acceptance rule, rater quality on gold, and Dawid–Skene beside it.

Acceptance rule (method "threshold", the note's): a candidate clip is accepted once it has at least `min_yes`
"yes" votes. Every clip is meant to get `raters_per_clip` votes; a clip is rejected as soon as the yes votes it
can still get cannot reach `min_yes` (so after all its votes at the latest), and pending until then. "unsure" is a
vote cast but not a yes: it uses up one of the clip's raters without counting towards acceptance, so a clip needs
`min_yes` yes votes among its raters whatever the others say. There is no majority, hence no ties: 3 yes and 3 no
out of 6 is accepted; all unsure is rejected once all raters have voted; fewer votes than `min_yes` is pending.
Gold tasks never become decisions; they measure the raters.

Method "dawid_skene": crowd-kit's DawidSkene over yes/no votes (an unsure vote carries no label, so it is left
out; a clip with no yes/no vote stays pending), with the gold answers given as known true labels. It weighs raters
by their estimated confusion matrices instead of counting yes votes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from kinetics_assets.voting.tasks import ANSWERS

METHODS = ("threshold", "dawid_skene")
DECISIONS = ("accepted", "rejected", "pending")
DECISION_COLUMNS = ["task_id", "clip_id", "class_name", "votes", "yes", "no", "unsure", "decision", "method"]
QUALITY_COLUMNS = [
    "rater_id", "votes", "gold_votes", "gold_correct", "accuracy", "ci_low", "ci_high",
    "gold_positive_votes", "positive_accuracy", "gold_negative_votes", "negative_accuracy", "flagged_spammer",
]
WILSON_Z = 1.96


@dataclass(frozen=True)
class AcceptanceRule:
    min_yes: int = 3
    raters_per_clip: int = 5

    def __post_init__(self) -> None:
        if self.min_yes < 1 or self.raters_per_clip < self.min_yes:
            raise ValueError(f"need 1 <= min_yes <= raters_per_clip, got {self.min_yes} and {self.raters_per_clip}")


def _vote_counts(votes: pd.DataFrame, candidates: pd.DataFrame) -> pd.DataFrame:
    """Per candidate task: votes, yes, no, unsure (zeros for a task nobody voted on)."""
    relevant = votes[votes["task_id"].isin(candidates["task_id"])]
    counts = pd.crosstab(relevant["task_id"], relevant["answer"]).reindex(columns=list(ANSWERS), fill_value=0)
    out = candidates[["task_id", "clip_id", "class_name"]].merge(counts, left_on="task_id", right_index=True,
                                                                  how="left")
    out[list(ANSWERS)] = out[list(ANSWERS)].fillna(0).astype(int)
    out["votes"] = out[list(ANSWERS)].sum(axis=1)
    return out


def _candidates(tasks: pd.DataFrame) -> pd.DataFrame:
    return tasks[tasks["kind"] == "candidate"]


def _without(votes: pd.DataFrame, ignore_raters: frozenset[str] | set[str]) -> pd.DataFrame:
    return votes[~votes["rater_id"].isin(ignore_raters)]


def threshold_decisions(votes: pd.DataFrame, tasks: pd.DataFrame, rule: AcceptanceRule = AcceptanceRule(),
                        ignore_raters: frozenset[str] | set[str] = frozenset()) -> pd.DataFrame:
    """One row per candidate task (DECISION_COLUMNS) under the >= min_yes rule; `ignore_raters`' votes don't count
    (e.g. raters flagged as spammers)."""
    counts = _vote_counts(_without(votes, ignore_raters), _candidates(tasks))
    still_possible = counts["yes"] + (rule.raters_per_clip - counts["votes"]).clip(lower=0)
    counts["decision"] = "pending"
    counts.loc[still_possible < rule.min_yes, "decision"] = "rejected"
    counts.loc[counts["yes"] >= rule.min_yes, "decision"] = "accepted"
    return counts.assign(method="threshold")[DECISION_COLUMNS].reset_index(drop=True)


def dawid_skene_decisions(votes: pd.DataFrame, tasks: pd.DataFrame, n_iter: int = 100,
                          ignore_raters: frozenset[str] | set[str] = frozenset()) -> pd.DataFrame:
    """One row per candidate task (DECISION_COLUMNS): accepted when Dawid–Skene's label is yes."""
    kept = _without(votes, ignore_raters)
    counts = _vote_counts(kept, _candidates(tasks))
    labelled = kept[kept["answer"].isin(["yes", "no"]) & kept["task_id"].isin(tasks["task_id"])]
    counts["decision"] = "pending"
    if not labelled.empty:
        from crowdkit.aggregation import DawidSkene  # 2.8 s to import: only when this method runs, not in every run

        gold = tasks[tasks["kind"] != "candidate"].set_index("task_id")["gold_answer"]
        gold = gold[gold.index.isin(labelled["task_id"])]
        data = labelled.rename(columns={"task_id": "task", "rater_id": "worker", "answer": "label"})
        predicted = DawidSkene(n_iter=n_iter).fit_predict(data[["task", "worker", "label"]],
                                                          true_labels=gold if not gold.empty else None)
        label = counts["task_id"].map(predicted)
        counts.loc[label == "yes", "decision"] = "accepted"
        counts.loc[label == "no", "decision"] = "rejected"
    return counts.assign(method="dawid_skene")[DECISION_COLUMNS].reset_index(drop=True)


def decide(votes: pd.DataFrame, tasks: pd.DataFrame, method: Literal["threshold", "dawid_skene"] = "threshold",
           rule: AcceptanceRule = AcceptanceRule(), ignore_raters: frozenset[str] | set[str] = frozenset()
           ) -> pd.DataFrame:
    """Decisions by the configured method (the pipeline's `accepted_clips` switch)."""
    if method == "threshold":
        return threshold_decisions(votes, tasks, rule, ignore_raters)
    if method == "dawid_skene":
        return dawid_skene_decisions(votes, tasks, ignore_raters=ignore_raters)
    raise ValueError(f"unknown aggregation method {method!r}; choose one of {', '.join(METHODS)}")


@dataclass(frozen=True)
class Agreement:
    clips: int                 # clips both methods decided
    same: int
    confusion: pd.DataFrame    # rows: first method's decision, columns: second's (accepted/rejected)

    @property
    def share_same(self) -> float:
        return self.same / self.clips if self.clips else math.nan


def _method_of(decisions: pd.DataFrame, fallback: str) -> str:
    return str(decisions["method"].iloc[0]) if len(decisions) else fallback


def agreement(first: pd.DataFrame, second: pd.DataFrame) -> Agreement:
    """How often two methods' decisions agree, over the clips both decided (pending ones left out)."""
    both = first[["task_id", "decision"]].merge(second[["task_id", "decision"]], on="task_id",
                                                suffixes=("_first", "_second"))
    both = both[(both["decision_first"] != "pending") & (both["decision_second"] != "pending")]
    outcomes = ["accepted", "rejected"]
    confusion = pd.crosstab(pd.Categorical(both["decision_first"], outcomes),
                            pd.Categorical(both["decision_second"], outcomes), dropna=False)
    confusion.index.name = _method_of(first, "first")
    confusion.columns.name = _method_of(second, "second")
    return Agreement(len(both), int((both["decision_first"] == both["decision_second"]).sum()), confusion)


def _wilson(correct: pd.Series, n: pd.Series) -> tuple[pd.Series, pd.Series]:
    """95 % Wilson score interval of a proportion (sensible at small counts and at 0 or 1)."""
    p = correct / n
    z2 = WILSON_Z ** 2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = WILSON_Z * ((p * (1 - p) / n + z2 / (4 * n ** 2)) ** 0.5) / (1 + z2 / n)
    return centre - half, centre + half


def rater_quality(votes: pd.DataFrame, tasks: pd.DataFrame, spammer_below: float = 0.7,
                  min_gold_votes: int = 10) -> pd.DataFrame:
    """Per rater (QUALITY_COLUMNS): accuracy on gold tasks with counts and a 95 % interval, split by gold
    positives and negatives. An unsure vote on gold counts as not correct. A rater is flagged as a spammer with at
    least `min_gold_votes` gold votes and an accuracy below `spammer_below`; raters without gold get NaN."""
    gold = tasks.loc[tasks["kind"] != "candidate", ["task_id", "gold_answer"]]
    on_gold = votes[["task_id", "rater_id", "answer"]].merge(gold, on="task_id")
    correct = on_gold["answer"] == on_gold["gold_answer"]
    positive = on_gold["gold_answer"] == "yes"
    raters = pd.Index(sorted(votes["rater_id"].unique()), name="rater_id")

    def per_rater(mask: pd.Series) -> pd.Series:
        return mask.groupby(on_gold["rater_id"]).sum().reindex(raters, fill_value=0).astype(int)

    def share(part: pd.Series, whole: pd.Series) -> pd.Series:
        return part / whole.where(whole > 0)

    out = pd.DataFrame(index=raters)
    out["votes"] = votes.groupby("rater_id").size().reindex(raters, fill_value=0)
    out["gold_votes"] = per_rater(pd.Series(True, index=on_gold.index))
    out["gold_correct"] = per_rater(correct)
    out["accuracy"] = share(out["gold_correct"], out["gold_votes"])
    out["ci_low"], out["ci_high"] = _wilson(out["gold_correct"], out["gold_votes"].where(out["gold_votes"] > 0))
    out["gold_positive_votes"] = per_rater(positive)
    out["positive_accuracy"] = share(per_rater(correct & positive), out["gold_positive_votes"])
    out["gold_negative_votes"] = per_rater(~positive)
    out["negative_accuracy"] = share(per_rater(correct & ~positive), out["gold_negative_votes"])
    out["flagged_spammer"] = (out["gold_votes"] >= min_gold_votes) & (out["accuracy"] < spammer_below)
    return out.reset_index()[QUALITY_COLUMNS]
