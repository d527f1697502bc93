"""Which classes to replenish and how many candidates each needs (the note topped up its 123 rarest classes)."""

from __future__ import annotations

import math

import pandas as pd

from kinetics_assets.data_files import data_path

DEFICIT_COLUMNS = [
    "class_name", "clips", "minimum", "deficit", "expected_yield", "yield_source", "candidate_budget",
]


def paper_yield_priors() -> pd.Series:
    """P(published) per class from the note's Appendix A (the 123 classes it replenished)."""
    table = pd.read_csv(data_path("paper_appendix_a_yields.csv"))
    return table.set_index("label")["p_published"]


def candidate_budget(deficit: int, expected_yield: float, safety_factor: float, cap: int) -> int:
    """Candidates to fetch so that, at the expected yield, the deficit is met with a safety margin."""
    if deficit <= 0:
        return 0
    if not 0 < expected_yield <= 1:
        raise ValueError(f"expected yield must be in (0, 1], got {expected_yield}")
    return min(cap, math.ceil(deficit * safety_factor / expected_yield))


def class_deficits(
    clips_per_class: pd.Series,
    minimum: int,
    *,
    history: pd.Series | None = None,
    priors: pd.Series | None = None,
    default_yield: float,
    safety_factor: float,
    cap: int,
) -> pd.DataFrame:
    """One row per class of the edition: clips now, deficit to ``minimum`` and the candidate budget.

    The expected yield is the class's own history when it has one, else the prior (the note's Appendix A),
    else ``default_yield``. Only classes present in the edition are considered: replenishment tops up
    existing classes, it does not add new ones.
    """
    history = history if history is not None else pd.Series(dtype=float)
    priors = priors if priors is not None else pd.Series(dtype=float)
    rows = []
    for name, clips in clips_per_class.sort_index().items():
        if name in history.index and history[name] > 0:
            expected, source = float(history[name]), "history"
        elif name in priors.index:
            expected, source = float(priors[name]), "note_appendix_a"
        else:
            expected, source = default_yield, "default"
        deficit = max(0, minimum - int(clips))
        rows.append(
            (name, int(clips), minimum, deficit, expected, source, candidate_budget(deficit, expected, safety_factor, cap))
        )
    frame = pd.DataFrame(rows, columns=DEFICIT_COLUMNS)
    return frame.sort_values(["deficit", "class_name"], ascending=[False, True]).reset_index(drop=True)
