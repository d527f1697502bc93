"""The sandbox crowd: seeded raters answering exported task files from the world's ground truth, returning vote
files that the real import path accepts, at the configured accuracies."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from kinetics_assets.partitions import class_key
from kinetics_assets.voting.tasks import build_tasks, tasks_csv
from kinetics_assets.voting.votes import VoteLedger, describe
from resources.crowd import CrowdInbox
from resources.sandbox.crowd import SandboxCrowd, paper_difficulty, rater_pool
from resources.sandbox.resource import SandboxPlatform
from resources.sandbox.truth import GroundTruth
from resources.sandbox.world import DEMO_CLASSES

CLASSES = list(DEMO_CLASSES[:3])   # stacking dice, steering car, punching person (boxing)
HARD = CLASSES[2]


def window_clips(truth: GroundTruth, label: str, kind: str) -> pd.DataFrame:
    """The first 10 s (or less) of every video of a class and kind, shaped as clips."""
    rows = []
    for video in truth.ids(label=label, kind=kind):
        end = min(10, math.floor(truth.world.record(video).duration))
        clip = f"{video}_{0:06d}_{end:06d}"
        rows.append({"clip_id": clip, "youtube_id": video, "time_start": 0.0, "time_end": float(end),
                     "clip_location": f"clips/{clip}.mp4", "label": label})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    sandbox = SandboxPlatform(seed=9, classes=CLASSES, relevant_per_class=200, distractors_per_class=60,
                              compilations_per_class=0, max_duration=30.0,
                              cache_dir=str(tmp_path_factory.mktemp("world")))
    yield sandbox
    sandbox.shutdown()


@pytest.fixture(scope="module")
def truth(platform) -> GroundTruth:
    return GroundTruth(platform.server.world)


@pytest.fixture(scope="module")
def all_tasks(truth) -> dict[str, pd.DataFrame]:
    """Per class: candidates = half its relevant videos + its distractors; the other half is the edition (gold)."""
    relevant = {c: window_clips(truth, c, "relevant") for c in CLASSES}
    shows = lambda frame: [truth.window_shows_class(r.youtube_id, r.time_start, r.time_end) == r.label
                           for r in frame.itertuples()]
    edition = pd.concat([frame.iloc[1::2] for frame in relevant.values()], ignore_index=True)
    edition = edition[shows(edition)]
    return {c: build_tasks(c, pd.concat([relevant[c].iloc[::2], window_clips(truth, c, "distractor")])
                           .drop(columns="label"), edition, gold_share=0.5) for c in CLASSES}


def make_crowd(platform, root, **config) -> SandboxCrowd:
    return SandboxCrowd(platform=platform, inbox=CrowdInbox(root=str(root)), seed=3, raters=12, spammer_share=0.25,
                        raters_per_task=5, difficulty={HARD: 0.5}, **config)


def publish(crowd: SandboxCrowd, tasks: pd.DataFrame, name: str) -> None:
    crowd.inbox.publish_tasks(f"{class_key(tasks['class_name'].iloc[0])}/{name}", tasks_csv(tasks))


def import_all(crowd: SandboxCrowd, ledger: VoteLedger, known: set[str]) -> list:
    return [ledger.import_file(f.path, crowd.inbox.read_votes(f.path), known) for f in crowd.inbox.vote_files()]


def test_rater_pool_is_seeded_with_spammers():
    pool = rater_pool(5, 40, 0.1, 0.85, 0.95, 0.5)
    assert pool == rater_pool(5, 40, 0.1, 0.85, 0.95, 0.5) and pool != rater_pool(6, 40, 0.1, 0.85, 0.95, 0.5)
    assert [r.user_id for r in pool] == list(range(1, 41))
    assert sum(r.spammer for r in pool) == 4
    assert all(r.accuracy == 0.5 if r.spammer else 0.85 <= r.accuracy <= 0.95 for r in pool)
    with pytest.raises(ValueError, match="bad crowd"):
        rater_pool(5, 0, 0.1, 0.85, 0.95, 0.5)


def test_difficulty_follows_appendix_a(platform, tmp_path):
    difficulty = paper_difficulty()
    assert len(difficulty) == 123 and difficulty["steering car"] == 0.0
    assert difficulty["twiddling fingers"] > difficulty["stacking dice"] > difficulty["steering car"]
    assert max(difficulty.values()) < 0.3
    crowd = make_crowd(platform, tmp_path, default_difficulty=0.2)
    assert crowd.class_difficulty(HARD) == 0.5                        # override
    assert crowd.class_difficulty("abseiling") == 0.2                 # not in the note's list
    assert crowd.class_difficulty("stacking dice") == difficulty["stacking dice"]


@pytest.mark.parametrize("export_format", ["csv", "label_studio"])
def test_crowd_files_import_with_zero_rejections(platform, all_tasks, tmp_path, export_format):
    crowd = make_crowd(platform, tmp_path / "exchange", export_format=export_format)
    tasks = all_tasks[CLASSES[0]]
    publish(crowd, tasks.iloc[:100], "batch-1.csv")
    written = crowd.answer_pending(CLASSES[0])
    assert written.endswith(".csv" if export_format == "csv" else ".json")
    ledger = VoteLedger(tmp_path / "ledger.sqlite")
    known = set(tasks["task_id"])
    reports = import_all(crowd, ledger, known)
    assert [describe(r.rejected) for r in reports] == [[]] and reports[0].votes_added == 500
    assert crowd.answer_pending(CLASSES[0]) is None                   # nothing new to answer

    publish(crowd, tasks.iloc[100:150], "batch-2.csv")
    crowd.answer_pending(CLASSES[0])
    again = import_all(crowd, ledger, known)
    assert sum(r.already_imported for r in again) == 1
    assert all(r.rejected.empty for r in again) and len(ledger.votes()) == 750
    assert ledger.votes().groupby("task_id").size().eq(5).all()


def test_crowd_refuses_a_task_file_without_the_needed_columns(platform, tmp_path):
    crowd = make_crowd(platform, tmp_path)
    crowd.inbox.publish_tasks(f"{class_key(CLASSES[0])}/broken.csv", b"task_id,class_name\nabc,stacking dice\n")
    with pytest.raises(ValueError, match=r"task file .*broken.csv: missing columns \['question'"):
        crowd.answer_pending(CLASSES[0])


def test_answers_track_ground_truth_at_the_configured_accuracies(platform, truth, all_tasks, tmp_path):
    crowd = make_crowd(platform, tmp_path / "exchange")
    ledger = VoteLedger(tmp_path / "ledger.sqlite")
    for name, tasks in all_tasks.items():
        publish(crowd, tasks, "all.csv")
        crowd.answer_pending(name)
    tasks = pd.concat(all_tasks.values(), ignore_index=True).set_index("task_id")
    assert all(r.rejected.empty for r in import_all(crowd, ledger, set(tasks.index)))
    votes = ledger.votes().join(tasks, on="task_id")
    right = [("yes" if truth.window_shows_class(v.youtube_id, v.time_start, v.time_end) == v.class_name else "no")
             == v.answer for v in votes.itertuples()]
    votes = votes.assign(right=right)
    behaviour = crowd.behaviour()
    raters = {str(r.user_id): r for r in behaviour.raters}
    expected = [behaviour.true_accuracy(raters[v.rater_id], v.class_name) for v in votes.itertuples()]
    votes = votes.assign(expected=expected)
    per_rater = votes.groupby("rater_id")[["right", "expected"]].mean()
    assert (votes.groupby("rater_id").size() > 300).all()
    assert (per_rater["right"] - per_rater["expected"]).abs().max() < 0.07
    # the hard class pulls careful raters towards chance, as configured
    careful = votes[~votes["rater_id"].map(lambda r: raters[r].spammer)]
    by_class = careful.groupby("class_name")[["right", "expected"]].mean()
    assert (by_class["right"] - by_class["expected"]).abs().max() < 0.03
    assert by_class.loc[HARD, "right"] < by_class.loc[CLASSES[1], "right"] - 0.15
