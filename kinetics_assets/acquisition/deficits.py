"""Which classes to replenish and how many candidates each needs (the note topped up its 123 rarest classes).

A class's progress counts every clip already on its way: the edition's surviving clips, candidate clips the crowd
accepted, and fetched candidate clips still waiting for votes. Counting the pending ones means a class being
replenished is not asked for the same clips twice while its votes are out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from kinetics_assets.data_files import data_path

DEFICIT_COLUMNS = [
    "class_name", "clips", "accepted", "pending", "minimum", "deficit", "expected_yield", "yield_source",
    "candidate_budget", "status", "reason",
]
# A round is due ("short"), not needed ("at_minimum"), or pointless until something changes ("supply_exhausted").
STATUSES = ("short", "at_minimum", "supply_exhausted")
DECIDED = ("accepted", "rejected")


def paper_yield_priors() -> pd.Series:
    """P(published) per class from the note's Appendix A (the 123 classes it replenished)."""
    table = pd.read_csv(data_path("paper_appendix_a_yields.csv"))
    return table.set_index("label")["p_published"]


def measured_yields(yields: pd.DataFrame | None) -> pd.Series:
    """Each class's own yield from earlier rounds (a `class_yields` table): P(published) once the release
    counted it, else P(voted positive); classes with no decided clip have none."""
    if yields is None or yields.empty:
        return pd.Series(dtype=float)
    measured = yields["p_published"].astype(float).fillna(yields["p_voted_positive"].astype(float))
    return measured.set_axis(yields["class_name"]).dropna()


def round_progress(fetched: pd.DataFrame | None, decisions: pd.DataFrame | None,
                   uncounted: set[str]) -> tuple[int, int]:
    """(accepted, pending) clips of a class's rounds so far.

    ``fetched``: the rounds' candidate clips (status, clip_id); ``decisions``: the crowd's decisions (clip_id,
    youtube_id, decision). Accepted clips count once per video, and not when the video is in ``uncounted``: one of
    the edition's clips of the class (a release made it one: it counts as surviving or gone, never twice), gone
    since it was accepted, or dropped at final filtering (a duplicate, too few yes votes). Pending: fetched clips
    with no accepted or rejected decision yet, whether their votes are out or not yet asked for.
    """
    decided = pd.DataFrame(columns=["clip_id", "youtube_id", "decision"]) if decisions is None else decisions
    decided = decided[decided["decision"].isin(DECIDED)]
    accepted = decided.loc[decided["decision"] == "accepted", "youtube_id"].dropna()
    accepted_count = len(set(accepted) - uncounted)
    if fetched is None:
        return accepted_count, 0
    done = set(fetched.loc[fetched["status"] == "done", "clip_id"])
    return accepted_count, len(done - set(decided["clip_id"]))


def candidate_budget(deficit: int, expected_yield: float, safety_factor: float, cap: int) -> int:
    """Candidates to fetch so that, at the expected yield, the deficit is met with a safety margin."""
    if deficit <= 0:
        return 0
    if not 0 < expected_yield <= 1:
        raise ValueError(f"expected yield must be in (0, 1], got {expected_yield}")
    return min(cap, math.ceil(deficit * safety_factor / expected_yield))


def _status(counted: int, minimum: int, exhausted: str | None) -> tuple[str, str]:
    if counted >= minimum:
        return "at_minimum", f"surviving + accepted + pending = {counted} >= minimum {minimum}"
    if exhausted:
        return "supply_exhausted", exhausted
    return "short", f"surviving + accepted + pending = {counted} < minimum {minimum}"


def class_deficits(
    clips_per_class: pd.Series,
    minimum: int,
    *,
    accepted: pd.Series | None = None,
    pending: pd.Series | None = None,
    history: pd.Series | None = None,
    priors: pd.Series | None = None,
    exhausted: Mapping[str, str] | None = None,
    default_yield: float,
    safety_factor: float,
    cap: int,
) -> pd.DataFrame:
    """One row per class of the edition: clips now, accepted and pending ones, deficit to ``minimum``, the
    candidate budget and the round's status with its reason.

    The expected yield is the class's own history when it has one, else the prior (the note's Appendix A),
    else ``default_yield``. ``exhausted`` names the classes whose last search found no untried video, with the
    reason; they stay short but no round is due. Only classes present in the edition are considered:
    replenishment tops up existing classes, it does not add new ones.
    """
    empty = pd.Series(dtype=float)
    history = history if history is not None else empty
    priors = priors if priors is not None else empty
    accepted = accepted if accepted is not None else empty
    pending = pending if pending is not None else empty
    exhausted = exhausted or {}
    rows = []
    for name, clips in clips_per_class.sort_index().items():
        if name in history.index and history[name] > 0:
            expected, source = float(history[name]), "history"
        elif name in priors.index:
            expected, source = float(priors[name]), "note_appendix_a"
        else:
            expected, source = default_yield, "default"
        ready, waiting = int(accepted.get(name, 0)), int(pending.get(name, 0))
        deficit = max(0, minimum - int(clips) - ready - waiting)
        status, reason = _status(int(clips) + ready + waiting, minimum, exhausted.get(name))
        budget = candidate_budget(deficit, expected, safety_factor, cap)
        rows.append((name, int(clips), ready, waiting, minimum, deficit, expected, source, budget, status, reason))
    frame = pd.DataFrame(rows, columns=DEFICIT_COLUMNS)
    return frame.sort_values(["deficit", "class_name"], ascending=[False, True]).reset_index(drop=True)
