"""The note's Table 2 for our editions: per edition and split, the clips it was published with and how many are
still available, at every availability check, beside the note's own rows.

A clip counts as available until its video is declared gone (as the release itself decides: an unknown or
once-failed answer is not yet a loss); how many of those are undetermined is shown beside, so a high share
never hides unchecked videos. The over-time rows accumulate: each computation adds the rows of the newest
evidence and keeps the earlier ones (``over_time``), since past availability snapshots are not kept per video.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from kinetics_assets.data_files import data_path  # noqa: E402
from kinetics_assets.metadata import figure_png  # noqa: E402

OURS = "this pipeline"
PAPER = "the note's Table 2 (available on 2020-10-14)"
PAPER_DATE = "2020-10-14"
SPLITS = ("train", "val", "test")
COLUMNS = ["source", "edition", "split", "as_of", "clips_original", "clips_available", "percent_retained",
           "clips_gone", "clips_undetermined"]


def paper_table2() -> pd.DataFrame:
    """The note's Table 2 in this module's columns (Kinetics-700-2020 has no availability count there)."""
    paper = pd.read_csv(data_path("paper_table2_retention.csv"))
    return pd.DataFrame({
        "source": PAPER, "edition": paper["dataset"], "split": paper["split"], "as_of": PAPER_DATE,
        "clips_original": paper["clips_original"], "clips_available": paper["clips_available_2020_10_14"],
        "percent_retained": paper["percent_retained"].astype(float),
    }).reindex(columns=COLUMNS)


def retention(clips: pd.DataFrame, statuses: pd.Series, as_of: str) -> pd.DataFrame:
    """Per edition and split of ``clips`` (edition, split, youtube_id; one row per published clip): clips
    originally, available (not declared gone) and their percentage at ``as_of``. ``statuses`` maps a video to
    its status ("available", "gone", or anything undecided); videos missing from it are undetermined."""
    missing = {"edition", "split", "youtube_id"} - set(clips.columns)
    if missing:
        raise ValueError(f"retention needs clip columns {sorted(missing)}")
    status = clips["youtube_id"].map(statuses).fillna("unchecked")
    counted = clips.assign(gone=status == "gone", undetermined=~status.isin(["available", "gone"]))
    grouped = counted.groupby(["edition", "split"], sort=False)
    rows = pd.DataFrame({"clips_original": grouped.size(), "clips_gone": grouped["gone"].sum(),
                         "clips_undetermined": grouped["undetermined"].sum()}).reset_index()
    rows = rows.assign(edition=pd.Categorical(rows["edition"], list(dict.fromkeys(clips["edition"]))),
                       split=pd.Categorical(rows["split"], SPLITS))
    rows = rows.sort_values(["edition", "split"]).astype({"edition": str, "split": str})
    available = rows["clips_original"] - rows["clips_gone"]
    return rows.assign(source=OURS, as_of=as_of, clips_available=available,
                       percent_retained=(100 * available / rows["clips_original"]).round(1))[COLUMNS]


def over_time(earlier: pd.DataFrame | None, now: pd.DataFrame) -> pd.DataFrame:
    """``now``'s rows after the earlier ones, replacing any at the same time (a rerun adds nothing)."""
    if earlier is None or earlier.empty:
        return now.reset_index(drop=True)
    kept = earlier[~earlier["as_of"].isin(set(now["as_of"]))]
    return pd.concat([kept[COLUMNS], now], ignore_index=True).sort_values("as_of", kind="stable").reset_index(drop=True)


def beside_paper(latest: pd.DataFrame) -> pd.DataFrame:
    """The newest rows of this pipeline, then the note's Table 2."""
    return pd.concat([latest, paper_table2()], ignore_index=True)


def retention_plot(history: pd.DataFrame) -> bytes:
    """Percent retained over time, one line per edition and split."""
    figure, axis = plt.subplots(figsize=(7, 3.5))
    for (edition, split), part in history.groupby(["edition", "split"], sort=False):
        axis.plot(pd.to_datetime(part["as_of"]), part["percent_retained"], marker="o", label=f"{edition} {split}")
    axis.set_ylabel("% of clips still available")
    axis.set_title("Retention over time (the note's Table 2, for our editions)")
    axis.legend(fontsize="small", loc="lower left")
    figure.autofmt_xdate()
    return figure_png(figure)
