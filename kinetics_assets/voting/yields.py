"""Per-class yields, the note's Appendix A: P(voted positive by >= 3 raters) and P(published).

P(voted positive) = accepted / decided candidates of the class (clips still waiting for votes are left out of
both counts, so a half-rated batch does not read as a low yield; once all votes are in, decided = candidates with
votes). P(published) = published / decided, where `published` is the number of the class's accepted clips left
after deduplication and the final filtering: it is filled only when those counts are given, and NaN until then,
never estimated. Ranked like the note's list: by P(published) when known, else by P(voted positive), highest
first; the note's own rank and numbers sit beside ours for the 123 classes it lists.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from kinetics_assets.data_files import data_path

PAPER_FILE = "paper_appendix_a_yields.csv"
YIELD_COLUMNS = [
    "rank", "class_name", "candidates", "decided", "pending", "accepted", "p_voted_positive", "published",
    "p_published", "paper_rank", "paper_p_voted_positive", "paper_p_published",
]


def paper_yields() -> pd.DataFrame:
    """The note's Appendix A: rank, label, p_voted_positive, p_published (probabilities, not percent)."""
    return pd.read_csv(data_path(PAPER_FILE))


def class_yields(decisions: pd.DataFrame, published: Mapping[str, int] | None = None,
                 paper: pd.DataFrame | None = None) -> pd.DataFrame:
    """The yield table (YIELD_COLUMNS) from candidate decisions (aggregate.DECISION_COLUMNS, any classes)."""
    paper = paper_yields() if paper is None else paper
    per_class = decisions.groupby("class_name")["decision"].value_counts().unstack(fill_value=0) \
        .reindex(columns=["accepted", "rejected", "pending"], fill_value=0)
    table = pd.DataFrame({
        "class_name": per_class.index,
        "candidates": per_class.sum(axis=1).to_numpy(),
        "decided": (per_class["accepted"] + per_class["rejected"]).to_numpy(),
        "pending": per_class["pending"].to_numpy(),
        "accepted": per_class["accepted"].to_numpy(),
    })
    decided = table["decided"].where(table["decided"] > 0)
    table["p_voted_positive"] = table["accepted"] / decided
    if published is not None:
        too_many = [name for name, count in published.items()
                    if count > table.loc[table["class_name"] == name, "accepted"].sum()]
        if too_many:
            raise ValueError(f"published counts exceed accepted clips for {too_many}")
    table["published"] = table["class_name"].map(published or {}).astype("Int64")
    table["p_published"] = table["published"].astype(float) / decided
    paper = paper.rename(columns={"label": "class_name", "rank": "paper_rank",
                                  "p_voted_positive": "paper_p_voted_positive", "p_published": "paper_p_published"})
    table = table.merge(paper, on="class_name", how="left")
    table["paper_rank"] = table["paper_rank"].astype("Int64")
    key = "p_published" if table["p_published"].notna().any() else "p_voted_positive"
    table = table.sort_values([key, "class_name"], ascending=[False, True], na_position="last", ignore_index=True)
    table["rank"] = range(1, len(table) + 1)
    return table[YIELD_COLUMNS]


def yields_markdown(table: pd.DataFrame) -> str:
    """The yield table as markdown, probabilities as percentages like the note's list."""
    shown = table.copy()
    for column in ("p_voted_positive", "p_published", "paper_p_voted_positive", "paper_p_published"):
        shown[column] = shown[column].map(lambda p: "" if pd.isna(p) else f"{100 * p:.2f}%")
    shown = shown.astype(object).where(shown.notna(), "")
    return "# Yield per class (Appendix A)\n\n" + shown.to_markdown(index=False) + "\n"
