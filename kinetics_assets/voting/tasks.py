"""Annotation tasks for one class: every new candidate clip, plus gold clips with known answers mixed in.

Each task asks "Does this clip show <class>?". Gold positives are clips the edition already has for the class,
gold negatives are edition clips of other classes; both answers are known without any ground truth, and they let
us measure each rater's accuracy. Gold tasks are a configurable share of all tasks, chosen deterministically
(clips ranked by a hash of class and clip id), so a rerun with more candidates keeps the gold it chose before.

A task id is the first 20 hex digits of sha256("{class name}\\n{clip id}"): stable across reruns, unique per
(class, clip), and free of anything that would reveal whether the task is gold.

Exchange formats (what goes to the crowd; the gold flag and expected answers never leave the pipeline):

CSV, one row per task, UTF-8 with a header, columns in this order:
    task_id        20 lowercase hex digits; raters' votes refer to it
    class_name     the Kinetics class the question is about
    question       "Does this clip show <class_name>?"
    clip_id        the official clip name `{youtube_id}_{start:06d}_{end:06d}`
    youtube_id     the source video
    time_start     clip start in the source video, seconds
    time_end       clip end in the source video, seconds
    clip_location  where the rater plays the clip: a URL or a clip-store path

Label Studio: a JSON list of tasks in Label Studio's import format, `[{"data": {...}}, ...]`, where `data` holds
the same fields plus `video` (the clip location, played by the labeling config's <Video value="$video"/>).
Label Studio assigns its own numeric ids; ours travels in `data.task_id` and comes back in the export.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from urllib.parse import quote

import pandas as pd

from kinetics_assets.partitions import class_key

TASK_ID_RE = re.compile(r"[0-9a-f]{20}")
ANSWERS = ("yes", "no", "unsure")
KINDS = ("candidate", "gold_positive", "gold_negative")

CLIP_COLUMNS = ["clip_id", "youtube_id", "time_start", "time_end", "clip_location"]
EXPORT_COLUMNS = ["task_id", "class_name", "question", *CLIP_COLUMNS]
TASK_COLUMNS = [*EXPORT_COLUMNS, "class_key", "kind", "gold_answer"]

LABEL_STUDIO_CONFIG = """<View>
  <Header value="$question"/>
  <Video name="video" value="$video"/>
  <Choices name="answer" toName="video" choice="single" showInLine="true" required="true">
    <Choice value="yes"/>
    <Choice value="no"/>
    <Choice value="unsure"/>
  </Choices>
</View>
"""


def task_id(class_name: str, clip_id: str) -> str:
    """The stable id of the task asking whether `clip_id` shows `class_name`."""
    return hashlib.sha256(f"{class_name}\n{clip_id}".encode()).hexdigest()[:20]


def question(class_name: str) -> str:
    return f"Does this clip show {class_name}?"


def _require(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks columns {missing}; it needs {columns}")
    for column in columns:
        blank = frame[column].isna() | (frame[column].astype(str).str.strip() == "")
        if blank.any():
            raise ValueError(f"{what} row {blank.idxmax()}: {column} is empty")


def _gold_order(class_name: str, clip_ids: pd.Series) -> pd.Series:
    """A deterministic, class-specific shuffle key: the prefix chosen for n gold stays chosen for n + 1."""
    return clip_ids.map(lambda clip: hashlib.sha256(f"gold\n{class_name}\n{clip}".encode()).hexdigest())


def _pick(pool: pd.DataFrame, class_name: str, n: int) -> pd.DataFrame:
    order = _gold_order(class_name, pool["clip_id"])
    return pool.assign(_order=order).sort_values("_order").head(n).drop(columns="_order")


def gold_counts(n_candidates: int, gold_share: float, positive_share: float) -> tuple[int, int]:
    """(gold positives, gold negatives) so that gold makes up `gold_share` of all tasks."""
    if not 0 <= gold_share < 1 or not 0 <= positive_share <= 1:
        raise ValueError(f"gold_share must be in [0, 1) and positive_share in [0, 1], "
                         f"got {gold_share} and {positive_share}")
    n_gold = round(n_candidates * gold_share / (1 - gold_share))
    positives = round(n_gold * positive_share)
    return positives, n_gold - positives


def build_tasks(class_name: str, candidates: pd.DataFrame, edition_clips: pd.DataFrame, *,
                gold_share: float = 0.1, positive_share: float = 0.5) -> pd.DataFrame:
    """All tasks of one class (TASK_COLUMNS), ordered by task id so gold is mixed in among candidates.

    `candidates`: the class's new clips, CLIP_COLUMNS. `edition_clips`: clips already in the edition, CLIP_COLUMNS
    plus `label`; those of `class_name` are gold positives, those of other classes gold negatives. When the edition
    has fewer clips than the share asks for, every eligible one is used. No candidates, no tasks.
    """
    _require(candidates, CLIP_COLUMNS, f"candidate clips of {class_name!r}")
    _require(edition_clips, [*CLIP_COLUMNS, "label"], "edition clips")
    duplicated = candidates["clip_id"][candidates["clip_id"].duplicated()]
    if not duplicated.empty:
        raise ValueError(f"candidate clips of {class_name!r}: clip {duplicated.iloc[0]!r} is listed twice")
    positives, negatives = gold_counts(len(candidates), gold_share, positive_share)
    if candidates.empty:
        return pd.DataFrame(columns=TASK_COLUMNS)
    own_clips = set(edition_clips.loc[edition_clips["label"] == class_name, "clip_id"])
    pool = edition_clips[~edition_clips["clip_id"].isin(candidates["clip_id"])].drop_duplicates("clip_id")
    parts = [
        candidates[CLIP_COLUMNS].assign(kind="candidate", gold_answer=""),
        _pick(pool[pool["label"] == class_name], class_name, positives)[CLIP_COLUMNS]
        .assign(kind="gold_positive", gold_answer="yes"),
        _pick(pool[~pool["clip_id"].isin(own_clips)], class_name, negatives)[CLIP_COLUMNS]
        .assign(kind="gold_negative", gold_answer="no"),
    ]
    tasks = pd.concat([p for p in parts if not p.empty], ignore_index=True)
    tasks = tasks.assign(
        task_id=[task_id(class_name, clip) for clip in tasks["clip_id"]],
        class_name=class_name,
        class_key=class_key(class_name),
        question=question(class_name),
    )
    return tasks[TASK_COLUMNS].sort_values("task_id", ignore_index=True)


def tasks_csv(tasks: pd.DataFrame) -> bytes:
    """The documented CSV export (EXPORT_COLUMNS only: nothing tells a rater which tasks are gold)."""
    buffer = io.StringIO()
    tasks[EXPORT_COLUMNS].to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue().encode("utf-8")


def label_studio_tasks(tasks: pd.DataFrame) -> bytes:
    """The Label Studio import JSON: one `{"data": {...}}` per task, `video` pointing at the clip."""
    records = []
    for row in tasks[EXPORT_COLUMNS].to_dict(orient="records"):
        row["time_start"], row["time_end"] = float(row["time_start"]), float(row["time_end"])
        records.append({"data": {"video": row["clip_location"], **row}})
    return json.dumps(records, indent=1, ensure_ascii=False).encode("utf-8")


def label_studio_local_url(relpath: str) -> str:
    """The URL a self-hosted Label Studio serves a file of its local-files storage under (relative to
    LOCAL_FILES_DOCUMENT_ROOT); use it as `clip_location` when the clip store is mounted there."""
    if relpath.startswith("/") or ".." in relpath.split("/"):
        raise ValueError(f"clip path {relpath!r} must be relative to the document root")
    return f"/data/local-files/?d={quote(relpath)}"
