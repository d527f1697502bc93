"""The sandbox crowd: simulated raters who answer the exported tasks and return vote files to the inbox.

It sees what a real crowd sees: the task CSV files published to the crowd exchange (resources/crowd.py), never
the pipeline's gold flags. Each rater watches the clip, i.e. is told by the sandbox's ground truth whether the
downloaded window [time_start, time_end) of the video shows the task's class, and answers it right with their
accuracy for that class. Answers are written back as vote files exactly like a real crowd export: the documented
CSV (default) or a Label Studio JSON export, at `votes/{class_key}/sandbox-crowd-{digest}.{csv|json}`.

Raters (seeded): most have an accuracy drawn uniformly from [accuracy_low, accuracy_high], a `spammer_share` of
them answer at `spammer_accuracy` (0.5 = coin flips). Each answers "unsure" with probability `unsure_rate`.
Every task gets `raters_per_task` distinct raters. Every draw is a hash of (seed, rater, task), so an answer does
not depend on batching or order.

Class difficulty d in [0, 1) pulls a rater's accuracy towards chance: effective = 0.5 + (accuracy - 0.5)(1 - d).
Default d for a class listed in the note's Appendix A comes from its P(voted positive) p, lower p meaning a harder
class (more ambiguous candidates): d = MAX_PAPER_DIFFICULTY * (1 - p / max p over the list), from 0 for the
best-yielding class ("steering car", 65.9 %) to about 0.29 for the worst; unlisted classes get
`default_difficulty`; `difficulty` overrides any class by name.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import dagster as dg
import numpy as np
from pydantic import Field

from kinetics_assets.partitions import class_key
from kinetics_assets.voting.yields import paper_yields
from resources.crowd import CrowdInbox
from resources.sandbox.resource import SandboxPlatform
from resources.sandbox.truth import GroundTruth

MAX_PAPER_DIFFICULTY = 0.3
TASK_FIELDS = ("task_id", "class_name", "question", "clip_id", "youtube_id", "time_start", "time_end",
               "clip_location")
OWN_PREFIX = "sandbox-crowd-"
ANSWER_SPREAD = timedelta(days=7)   # votes arrive over a week after `start`

# (youtube_id, start, end) -> the class the window shows, or None
ShowsClass = Callable[[str, float, float], "str | None"]


@dataclass(frozen=True)
class SimulatedRater:
    user_id: int
    accuracy: float
    spammer: bool


@dataclass(frozen=True)
class SimulatedVote:
    task: dict            # the task CSV row
    user_id: int
    answer: str
    submitted_at: datetime


def _uniform(*parts: object) -> float:
    """A deterministic draw in [0, 1) keyed by `parts`."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2 ** 64


def rater_pool(seed: int, size: int, spammer_share: float, accuracy_low: float, accuracy_high: float,
               spammer_accuracy: float) -> list[SimulatedRater]:
    """`size` raters with user ids 1..size; round(size * spammer_share) of them (seeded choice) are spammers."""
    if size < 1 or not 0 <= spammer_share <= 1 or not 0 <= accuracy_low <= accuracy_high <= 1:
        raise ValueError(f"bad crowd: size={size}, spammer_share={spammer_share}, "
                         f"accuracy range [{accuracy_low}, {accuracy_high}]")
    rng = np.random.default_rng([seed, 0xC0D])
    spammers = set(rng.permutation(size)[: round(size * spammer_share)].tolist())
    accuracies = rng.uniform(accuracy_low, accuracy_high, size)
    return [SimulatedRater(i + 1, spammer_accuracy if i in spammers else float(accuracies[i]), i in spammers)
            for i in range(size)]


@functools.cache
def paper_difficulty() -> dict[str, float]:
    """Default difficulty of each class listed in Appendix A (see the module docstring)."""
    paper = paper_yields()
    top = paper["p_voted_positive"].max()
    return {row.label: MAX_PAPER_DIFFICULTY * (1 - row.p_voted_positive / top) for row in paper.itertuples()}


def effective_accuracy(rater: SimulatedRater, difficulty: float) -> float:
    return 0.5 + (rater.accuracy - 0.5) * (1 - difficulty)


def read_task_csv(name: str, data: bytes) -> list[dict]:
    """Rows of an exported task CSV; a file lacking a needed column is an error naming it."""
    reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""))
    missing = [f for f in TASK_FIELDS if f not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"task file {name}: missing columns {missing}")
    return list(reader)


@dataclass(frozen=True)
class CrowdBehaviour:
    seed: int
    raters: tuple[SimulatedRater, ...]
    raters_per_task: int
    unsure_rate: float
    start: datetime
    difficulty: Callable[[str], float]

    def assigned(self, task_id: str) -> list[SimulatedRater]:
        """The task's raters: the pool ordered by a (seed, task, rater) hash, first raters_per_task."""
        if self.raters_per_task > len(self.raters):
            raise ValueError(f"{self.raters_per_task} raters per task but only {len(self.raters)} in the pool")
        ranked = sorted(self.raters, key=lambda r: _uniform(self.seed, "assign", task_id, r.user_id))
        return ranked[: self.raters_per_task]

    def true_accuracy(self, rater: SimulatedRater, class_name: str) -> float:
        """Expected share of this rater's answers on the class that are right (an unsure answer is not)."""
        return (1 - self.unsure_rate) * effective_accuracy(rater, self.difficulty(class_name))

    def answer(self, tasks: Sequence[dict], shows_class: ShowsClass) -> list[SimulatedVote]:
        votes = []
        for task in tasks:
            shown = shows_class(task["youtube_id"], float(task["time_start"]), float(task["time_end"]))
            right, wrong = ("yes", "no") if shown == task["class_name"] else ("no", "yes")
            difficulty = self.difficulty(task["class_name"])
            for rater in self.assigned(task["task_id"]):
                key = (self.seed, task["task_id"], rater.user_id)
                if _uniform(*key, "unsure") < self.unsure_rate:
                    answer = "unsure"
                else:
                    answer = right if _uniform(*key, "correct") < effective_accuracy(rater, difficulty) else wrong
                when = self.start + _uniform(*key, "time") * ANSWER_SPREAD
                votes.append(SimulatedVote(task, rater.user_id, answer, when))
        return votes


def votes_csv(votes: Sequence[SimulatedVote]) -> bytes:
    """The crowd's CSV export: task_id, rater_id, answer, submitted_at (ISO-8601, UTC)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["task_id", "rater_id", "answer", "submitted_at"])
    for vote in votes:
        writer.writerow([vote.task["task_id"], vote.user_id, vote.answer,
                         vote.submitted_at.strftime("%Y-%m-%dT%H:%M:%SZ")])
    return buffer.getvalue().encode("utf-8")


def _ls_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def votes_label_studio(votes: Sequence[SimulatedVote]) -> bytes:
    """A Label Studio JSON export of the project: tasks with their data and one annotation per vote."""
    by_task: dict[str, list[SimulatedVote]] = {}
    for vote in votes:
        by_task.setdefault(vote.task["task_id"], []).append(vote)
    exported, annotation_id = [], 0
    for ls_id, task_votes in enumerate(by_task.values(), start=1):
        task = task_votes[0].task
        annotations = []
        for vote in task_votes:
            annotation_id += 1
            annotations.append({
                "id": annotation_id, "completed_by": vote.user_id, "was_cancelled": False, "ground_truth": False,
                "created_at": _ls_time(vote.submitted_at), "updated_at": _ls_time(vote.submitted_at),
                "lead_time": round(8 + 20 * _uniform(task["task_id"], vote.user_id, "lead"), 3),
                "task": ls_id, "result_count": 0,
                "result": [{"id": f"r{annotation_id}", "from_name": "answer", "to_name": "video", "type": "choices",
                            "origin": "manual", "value": {"choices": [vote.answer]}}],
            })
        first = min(v.submitted_at for v in task_votes)
        exported.append({"id": ls_id, "data": {"video": task["clip_location"], **{f: task[f] for f in TASK_FIELDS}},
                         "annotations": annotations, "predictions": [], "project": 1,
                         "created_at": _ls_time(first - timedelta(hours=1)), "updated_at": _ls_time(first)})
    return json.dumps(exported, indent=1, ensure_ascii=False).encode("utf-8")


def _answered_task_ids(name: str, data: bytes) -> set[str]:
    """Task ids in one of the crowd's own earlier vote files."""
    if name.endswith(".json"):
        return {task["data"]["task_id"] for task in json.loads(data)}
    return {row["task_id"] for row in csv.DictReader(io.StringIO(data.decode("utf-8")))}


class SandboxCrowd(dg.ConfigurableResource):
    """Simulated raters for the sandbox profile; `answer_pending` plays one round of crowd work for a class."""

    platform: SandboxPlatform
    inbox: CrowdInbox
    seed: int = Field(default=0, description="Same seed, same raters, same answers.")
    raters: int = Field(default=30, ge=1, description="Size of the rater pool.")
    spammer_share: float = Field(default=0.1, ge=0, le=1)
    accuracy_low: float = Field(default=0.85, ge=0, le=1)
    accuracy_high: float = Field(default=0.95, ge=0, le=1)
    spammer_accuracy: float = Field(default=0.5, ge=0, le=1)
    raters_per_task: int = Field(default=5, ge=1)
    unsure_rate: float = Field(default=0.02, ge=0, le=1)
    default_difficulty: float = Field(default=0.1, ge=0, lt=1, description="For classes Appendix A does not list.")
    difficulty: dict[str, float] = Field(default_factory=dict, description="Per-class overrides, by class name.")
    export_format: Literal["csv", "label_studio"] = "csv"
    start: str = Field(default="2020-06-01T09:00:00+00:00", description="When the crowd starts answering.")

    def class_difficulty(self, class_name: str) -> float:
        value = self.difficulty.get(class_name, paper_difficulty().get(class_name, self.default_difficulty))
        if not 0 <= value < 1:
            raise ValueError(f"difficulty of {class_name!r} must be in [0, 1), got {value}")
        return value

    def behaviour(self) -> CrowdBehaviour:
        pool = rater_pool(self.seed, self.raters, self.spammer_share, self.accuracy_low, self.accuracy_high,
                          self.spammer_accuracy)
        return CrowdBehaviour(self.seed, tuple(pool), self.raters_per_task, self.unsure_rate,
                              datetime.fromisoformat(self.start), self.class_difficulty)

    def _answered(self, key: str) -> set[str]:
        own = [f.path for f in self.inbox.vote_files() if f.path.startswith(f"{key}/{OWN_PREFIX}")]
        return set().union(*(_answered_task_ids(path, self.inbox.read_votes(path)) for path in own))

    def answer_pending(self, class_name: str) -> str | None:
        """Answer the class's published tasks not answered yet; the path of the vote file written, or None."""
        key = class_key(class_name)
        answered = self._answered(key)
        pending: dict[str, dict] = {}
        for path in self.inbox.task_files(key):
            for task in read_task_csv(path, self.inbox.read_tasks(path)):
                if task["task_id"] not in answered and task["class_name"] == class_name:
                    pending.setdefault(task["task_id"], task)
        if not pending:
            return None
        votes = self.behaviour().answer(list(pending.values()), GroundTruth(self.platform.server.world)
                                        .window_shows_class)
        digest = hashlib.sha256("\n".join(sorted(pending)).encode()).hexdigest()[:16]
        if self.export_format == "csv":
            relpath, data = f"{key}/{OWN_PREFIX}{digest}.csv", votes_csv(votes)
        else:
            relpath, data = f"{key}/{OWN_PREFIX}{digest}.json", votes_label_studio(votes)
        self.inbox.write_votes(relpath, data)
        return relpath
