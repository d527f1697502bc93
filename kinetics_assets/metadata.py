"""Turning frames and figures into the metadata a curator sees in the Dagster UI."""

from __future__ import annotations

import base64
import io

import dagster as dg
import pandas as pd

_TYPES = {"i": "int", "u": "int", "f": "float", "b": "bool"}


def table(frame: pd.DataFrame, limit: int = 50) -> dg.TableMetadataValue:
    """A Dagster table of the first ``limit`` rows, typed from the frame's dtypes."""
    shown = frame.head(limit)
    schema = dg.TableSchema(
        columns=[dg.TableColumn(str(name), _TYPES.get(dtype.kind, "string")) for name, dtype in shown.dtypes.items()]
    )
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
