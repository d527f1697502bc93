"""Figures for edition statistics."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from kinetics_assets.metadata import figure_png  # noqa: E402


def clips_per_class_histogram(counts: pd.DataFrame, edition: str) -> bytes:
    """Histogram of clips per class over all splits: how balanced the edition is."""
    figure, axis = plt.subplots(figsize=(6, 3))
    axis.hist(counts["all"], bins=min(40, max(5, counts["all"].nunique())), color="#4c72b0")
    axis.set_xlabel("clips per class (all splits)")
    axis.set_ylabel("classes")
    axis.set_title(f"{edition}: clips per class")
    return figure_png(figure)
