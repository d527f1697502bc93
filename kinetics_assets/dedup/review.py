"""What a human reviewer sees and edits: per-cluster contact sheets and the overrides file.

The overrides file is a CSV with one row per cluster the reviewer looked at::

    cluster_id,decision,keep_id,members
    dup-1a2b3c4d5e,keep,vid_B,vid_A;vid_B;vid_C
    dup-99f0e1d2c3,split,,vid_D;vid_E

``decision`` is ``auto`` (no change), ``keep`` (keep ``keep_id``, drop the others) or ``split`` (the listed
members are not duplicates of each other). Decisions name clips, not only the cluster, so they still apply when
a later run adds a new copy to the cluster (and thus changes its id).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import av
import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from kinetics_assets.dedup.cluster import Override
from resources.storage import atomic_write_bytes

OVERRIDE_COLUMNS = ("cluster_id", "decision", "keep_id", "members")
DECISIONS = ("auto", "keep", "split")
THUMB_HEIGHT = 72
CAPTION_WIDTH = 360
SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,120}")


def read_overrides(path: Path) -> list[Override]:
    """The reviewer's keep/split decisions (``auto`` rows are skipped); malformed rows raise naming the row."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = set(OVERRIDE_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: overrides file lacks columns {sorted(missing)}")
        out = []
        for line, row in enumerate(reader, start=2):
            decision = (row["decision"] or "").strip().lower() or "auto"
            members = tuple(m.strip() for m in (row["members"] or "").split(";") if m.strip())
            keep_id = (row["keep_id"] or "").strip()
            where = f"{path}:{line} (cluster {row['cluster_id']!r})"
            if decision not in DECISIONS:
                raise ValueError(f"{where}: decision {decision!r} is not one of {', '.join(DECISIONS)}")
            if decision == "keep" and not keep_id:
                raise ValueError(f"{where}: decision 'keep' needs a keep_id")
            if decision == "keep" and members and keep_id not in members:
                raise ValueError(f"{where}: keep_id {keep_id!r} is not among the members {list(members)}")
            if decision == "split" and len(members) < 2:
                raise ValueError(f"{where}: decision 'split' needs at least two members")
            if decision != "auto":
                out.append(Override(row["cluster_id"].strip(), decision, keep_id, members))
        return out


def write_overrides_template(decisions: pd.DataFrame, path: Path) -> Path:
    """An overrides file listing every cluster as ``auto`` with its current keeper, for the reviewer to edit."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(OVERRIDE_COLUMNS)
    for name, group in decisions.groupby("cluster_id", sort=True):
        writer.writerow((name, "auto", group["keeper_id"].iloc[0], ";".join(sorted(group["clip_id"]))))
    return atomic_write_bytes(Path(path), buffer.getvalue().encode("utf-8"))


def _duration(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return container.duration / 1e6 if container.duration else 0.0


def thumbnails(path: Path, count: int, height: int = THUMB_HEIGHT) -> list[np.ndarray]:
    """Up to ``count`` RGB frames spread evenly over the video, scaled by FFmpeg to ``height`` rows."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        step = _duration(container, stream) / count
        width = max(2, round(height * stream.codec_context.width / max(stream.codec_context.height, 1)) // 2 * 2)
        out, first = [], None
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            t = float(frame.pts * frame.time_base)
            first = t if first is None else first
            if t - first + 1e-6 >= (len(out) + 0.5) * step or not out:
                out.append(frame.to_ndarray(width=width, height=height, format="rgb24"))
                if len(out) == count:
                    break
        return out


def contact_sheet(rows: Sequence[tuple[str, Sequence[np.ndarray]]], height: int = THUMB_HEIGHT) -> Image.Image:
    """One row per clip: a caption, then its thumbnails left to right."""
    widest = max((sum(t.shape[1] + 2 for t in thumbs) for _, thumbs in rows), default=0)
    sheet = Image.new("RGB", (CAPTION_WIDTH + widest, len(rows) * (height + 4)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for r, (caption, thumbs) in enumerate(rows):
        y = r * (height + 4) + 2
        for line, text in enumerate(_wrap(caption, CAPTION_WIDTH // 6)[: height // 12]):
            draw.text((4, y + 12 * line), text, fill=(0, 0, 0))
        x = CAPTION_WIDTH
        for thumb in thumbs:
            sheet.paste(Image.fromarray(thumb), (x, y))
            x += thumb.shape[1] + 2
    return sheet


def _wrap(text: str, width: int) -> list[str]:
    return [text[k:k + width] for k in range(0, max(len(text), 1), width)]


def write_cluster_sheets(decisions: pd.DataFrame, video_paths: Mapping[str, Path], folder: Path,
                         columns: int = 6) -> list[Path]:
    """One PNG per cluster in ``folder`` (``<cluster_id>.png``): the keeper first, then the dropped clips."""
    written = []
    for name, group in decisions.groupby("cluster_id", sort=True):
        if not SAFE_NAME.fullmatch(str(name)):
            raise ValueError(f"cluster id {name!r} is not a safe file name")
        group = group.sort_values(["keep", "clip_id"], ascending=[False, True])
        rows = []
        for clip_id, keep, reason in zip(group["clip_id"], group["keep"], group["reason"]):
            if clip_id not in video_paths:
                raise KeyError(f"cluster {name}: no video path for clip {clip_id!r}")
            caption = f"KEEP {clip_id}" if keep else f"DROP {clip_id}: {reason}"
            rows.append((caption, thumbnails(Path(video_paths[clip_id]), columns)))
        buffer = io.BytesIO()
        contact_sheet(rows).save(buffer, format="PNG")
        written.append(atomic_write_bytes(Path(folder) / f"{name}.png", buffer.getvalue()))
    return written
