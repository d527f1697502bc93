"""Turning frames and figures into the metadata a curator sees in the Dagster UI."""

from __future__ import annotations

import base64
import io

import dagster as dg
import pandas as pd

_TYPES = {"i": "int", "u": "int", "f": "float", "b": "bool"}
# What the columns that recur across the tabular assets mean, shown in the catalog's column schema.
COLUMN_DESCRIPTIONS = {
    "label": "class name, as in the official annotation files",
    "class_name": "class name (the taxonomy's spelling)",
    "youtube_id": "the video's 11-character YouTube id",
    "time_start": "clip start in the video, seconds",
    "time_end": "clip end in the video, seconds (at most 10 s after the start)",
    "split": "train, val or test",
    "edition": "the edition the row belongs to",
    "taxonomy": "the class list the edition's labels are checked against",
    "status": "the row's outcome (e.g. available / gone / unknown, clipped / failed)",
    "category": "why a request failed: a permanent category (recorded) or a transient one (retried)",
    "reason": "why the row was dropped or decided as it was",
    "deficit": "clips still needed to reach the minimum",
    "clip_id": "the clip's official name: youtube_id_start_end",
    "path": "where the file lies on this machine",
    "decision": "accepted, rejected or pending, from the crowd's votes",
    "origin": "edition (a surviving clip) or new (replenished)",
}


def column_schema(frame: pd.DataFrame) -> dg.TableSchema:
    """The frame's columns, typed from its dtypes, with the meaning of the recurring ones."""
    return dg.TableSchema(columns=[
        dg.TableColumn(str(name), _TYPES.get(dtype.kind, "string"), description=COLUMN_DESCRIPTIONS.get(str(name)))
        for name, dtype in frame.dtypes.items()
    ])


def table(frame: pd.DataFrame, limit: int = 50) -> dg.TableMetadataValue:
    """A Dagster table of the first ``limit`` rows, typed from the frame's dtypes."""
    shown = frame.head(limit)
    schema = column_schema(shown)
    records = [
        dg.TableRecord({str(k): (None if pd.isna(v) else (v.item() if hasattr(v, "item") else v)) for k, v in row.items()})
        for row in shown.to_dict("records")
    ]
    return dg.MetadataValue.table(records=records, schema=schema)


def png_markdown(png: bytes, caption: str) -> dg.MarkdownMetadataValue:
    """A PNG inlined into markdown so the UI shows the picture itself."""
    encoded = base64.b64encode(png).decode("ascii")
    return dg.MetadataValue.md(f"![{caption}](data:image/png;base64,{encoded})")


def figure_png(figure) -> bytes:
    """Render a matplotlib figure to PNG bytes and release it."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()
