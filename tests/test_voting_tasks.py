"""Annotation tasks: stable ids, deterministic gold mixed in, and the CSV / Label Studio exchange formats."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET

import pandas as pd
import pytest

from kinetics_assets.voting.tasks import (
    EXPORT_COLUMNS,
    LABEL_STUDIO_CONFIG,
    TASK_ID_RE,
    build_tasks,
    gold_counts,
    label_studio_local_url,
    label_studio_tasks,
    task_id,
    tasks_csv,
)

CLASS = "stacking dice"


def clips(prefix: str, n: int, label: str | None = None) -> pd.DataFrame:
    """n clips of 11-char video ids `{prefix}...`; with `label`, shaped like edition clips."""
    ids = [f"{prefix}{i:0{11 - len(prefix)}d}" for i in range(n)]
    frame = pd.DataFrame({
        "clip_id": [f"{v}_000003_000013" for v in ids], "youtube_id": ids, "time_start": 3.0, "time_end": 13.0,
        "clip_location": [f"clips/{v}_000003_000013.mp4" for v in ids],
    })
    return frame.assign(label=label) if label is not None else frame


@pytest.fixture
def edition() -> pd.DataFrame:
    return pd.concat([clips("own", 40, CLASS), clips("oth", 40, "steering car"), clips("luge", 40, "luge")],
                     ignore_index=True)


def test_task_id_is_stable_per_class_and_clip():
    first = task_id(CLASS, "abcdefghijk_000000_000010")
    assert first == task_id(CLASS, "abcdefghijk_000000_000010")
    assert TASK_ID_RE.fullmatch(first)
    assert first != task_id("luge", "abcdefghijk_000000_000010")
    assert first != task_id(CLASS, "abcdefghijk_000001_000011")


def test_gold_makes_up_the_configured_share(edition):
    tasks = build_tasks(CLASS, clips("new", 90), edition, gold_share=0.1, positive_share=0.5)
    assert gold_counts(90, 0.1, 0.5) == (5, 5)
    assert tasks["kind"].value_counts().to_dict() == {"candidate": 90, "gold_positive": 5, "gold_negative": 5}
    assert tasks["task_id"].is_unique and (tasks["class_name"] == CLASS).all()
    assert (tasks["question"] == "Does this clip show stacking dice?").all()


def test_gold_answers_come_from_the_edition_labels(edition):
    # a clip the edition holds under both classes must never be a gold negative
    both = clips("oth", 1, CLASS)
    tasks = build_tasks(CLASS, clips("new", 50), pd.concat([edition, both]), gold_share=0.5)
    label_of = pd.concat([edition, both]).groupby("clip_id")["label"].agg(set)
    positives = tasks[tasks["kind"] == "gold_positive"]
    negatives = tasks[tasks["kind"] == "gold_negative"]
    assert (positives["gold_answer"] == "yes").all() and (negatives["gold_answer"] == "no").all()
    assert all(CLASS in label_of[c] for c in positives["clip_id"])
    assert all(CLASS not in label_of[c] for c in negatives["clip_id"])
    assert (tasks.loc[tasks["kind"] == "candidate", "gold_answer"] == "").all()


def test_gold_choice_is_deterministic_and_kept_when_candidates_grow(edition):
    few = build_tasks(CLASS, clips("new", 40), edition)
    again = build_tasks(CLASS, clips("new", 40), edition.sample(frac=1.0, random_state=1))
    more = build_tasks(CLASS, clips("new", 80), edition)
    gold = lambda t: set(t.loc[t["kind"] != "candidate", "clip_id"])
    assert gold(few) == gold(again)
    assert gold(few) < gold(more)


def test_gold_never_repeats_a_candidate_clip(edition):
    candidates = edition[edition["label"] == CLASS].drop(columns="label").head(30)
    tasks = build_tasks(CLASS, candidates, edition, gold_share=0.5)
    assert tasks["clip_id"].is_unique
    assert not set(tasks.loc[tasks["kind"] != "candidate", "clip_id"]) & set(candidates["clip_id"])


def test_small_edition_gives_what_it_has_and_no_candidates_gives_no_tasks(edition):
    tasks = build_tasks(CLASS, clips("new", 100), edition.head(3), gold_share=0.5)
    assert (tasks["kind"] == "gold_positive").sum() == 3 and (tasks["kind"] == "gold_negative").sum() == 0
    assert build_tasks(CLASS, clips("new", 0), edition).empty


def test_bad_input_is_named():
    good = clips("new", 3)
    with pytest.raises(ValueError, match="lacks columns.*clip_location"):
        build_tasks(CLASS, good.drop(columns="clip_location"), clips("own", 3, CLASS))
    with pytest.raises(ValueError, match="row 1: clip_location is empty"):
        build_tasks(CLASS, good.assign(clip_location=["a", " ", "c"]), clips("own", 3, CLASS))
    with pytest.raises(ValueError, match="listed twice"):
        build_tasks(CLASS, pd.concat([good, good.head(1)]), clips("own", 3, CLASS))
    with pytest.raises(ValueError, match="gold_share"):
        build_tasks(CLASS, good, clips("own", 3, CLASS), gold_share=1.0)


def test_csv_export_has_the_documented_columns_and_hides_gold(edition):
    tasks = build_tasks(CLASS, clips("new", 20), edition, gold_share=0.3)
    data = tasks_csv(tasks)
    assert data.decode().splitlines()[0] == ",".join(EXPORT_COLUMNS)
    back = pd.read_csv(io.BytesIO(data), dtype={"task_id": str})
    assert list(back.columns) == EXPORT_COLUMNS and len(back) == len(tasks)
    assert back["task_id"].tolist() == tasks["task_id"].tolist()
    assert b"gold" not in data and b"candidate" not in data


def test_label_studio_tasks_are_importable_and_hide_gold(edition):
    tasks = build_tasks(CLASS, clips("new", 20), edition, gold_share=0.3)
    records = json.loads(label_studio_tasks(tasks))
    assert isinstance(records, list) and len(records) == len(tasks)
    for record, row in zip(records, tasks.itertuples()):
        assert set(record) == {"data"}
        assert record["data"]["video"] == row.clip_location and record["data"]["task_id"] == row.task_id
        assert set(record["data"]) == {"video", *EXPORT_COLUMNS}


def test_label_studio_config_asks_yes_no_unsure_over_the_video():
    view = ET.fromstring(LABEL_STUDIO_CONFIG)
    video = view.find("Video")
    choices = view.find("Choices")
    assert video.get("value") == "$video"
    assert choices.get("toName") == video.get("name") and choices.get("choice") == "single"
    assert [c.get("value") for c in choices.findall("Choice")] == ["yes", "no", "unsure"]
    assert view.find("Header").get("value") == "$question"


def test_label_studio_local_url():
    assert label_studio_local_url("clips/a b.mp4") == "/data/local-files/?d=clips/a%20b.mp4"
    with pytest.raises(ValueError):
        label_studio_local_url("../secret.mp4")
