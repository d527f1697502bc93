"""The note's Table 3: the share of clips uploaded from each continent, beside the note's own numbers.

Continents follow the note, not the textbook: Latin America is South America plus Mexico, Central America and
the Caribbean; North America is Northern America only (US, Canada, Greenland, Bermuda, Saint Pierre and
Miquelon). pycountry-convert-ng gives the textbook continent of an ISO 3166-1 alpha-2 code; its North America
is split here. Shares are over clips with an upload country, as in the note (about 90 % of its clips have
one); the share of clips with a location is reported beside them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd
from pycountry_convert import country_alpha2_to_continent_code

from kinetics_assets.data_files import data_path

NOTE_CONTINENTS = ("Africa", "Asia", "Europe", "Latin America", "North America", "Oceania")
ANTARCTICA = "Antarctica"  # not in the note's table; shown only when some clip claims it
NORTHERN_AMERICA = frozenset({"US", "CA", "GL", "BM", "PM"})
_BY_CODE = {"AF": "Africa", "AS": "Asia", "EU": "Europe", "SA": "Latin America", "OC": "Oceania", "AN": ANTARCTICA}
# Codes pycountry-convert-ng lacks, placed as the UN M49 regions place them.
_MISSING_FROM_LIBRARY = {"SX": "Latin America", "VA": "Europe", "UM": "Oceania", "AQ": ANTARCTICA}
_ALPHA2 = re.compile(r"[A-Z]{2}")


@dataclass(frozen=True)
class Geography:
    """Table 3 for one set of clips: ``table`` has continent, clips, share (of clips with a location)."""

    table: pd.DataFrame
    clips: int
    located: int

    @property
    def located_share(self) -> float:
        return self.located / self.clips if self.clips else 0.0


def continent_of(country: str) -> str:
    """The note's continent for an ISO 3166-1 alpha-2 code (``MX`` -> Latin America, ``US`` -> North America)."""
    code = country.strip().upper()
    if not _ALPHA2.fullmatch(code):
        raise ValueError(f"{country!r} is not an ISO 3166-1 alpha-2 country code")
    if code in _MISSING_FROM_LIBRARY:
        return _MISSING_FROM_LIBRARY[code]
    try:
        continent = country_alpha2_to_continent_code(code)
    except KeyError:
        raise ValueError(f"{country!r} is not a known ISO 3166-1 alpha-2 country code") from None
    if continent == "NA":
        return "North America" if code in NORTHERN_AMERICA else "Latin America"
    return _BY_CODE[continent]


def _is_missing(country) -> bool:
    return country is None or (not isinstance(country, str) and pd.isna(country)) or not str(country).strip()


def continent_shares(countries: pd.Series) -> Geography:
    """Table 3 of the clips whose upload countries are ``countries`` (None or empty: no location).

    An unreadable code is an error naming its index (a youtube_id when the series is indexed by video).
    """
    continents = []
    for index, country in countries.items():
        if _is_missing(country):
            continue
        try:
            continents.append(continent_of(str(country)))
        except ValueError as err:
            raise ValueError(f"clip {index}: {err}") from None
    counts = pd.Series(continents, dtype=object).value_counts()
    order = list(NOTE_CONTINENTS) + ([ANTARCTICA] if ANTARCTICA in counts else [])
    clips = counts.reindex(order, fill_value=0).astype(int)
    located = int(clips.sum())
    shares = clips / located if located else clips * 0.0
    table = pd.DataFrame({"continent": order, "clips": clips.to_numpy(), "share": shares.to_numpy()})
    return Geography(table=table, clips=len(countries), located=located)


def country_sources(sources: pd.Series) -> pd.DataFrame:
    """Where the clips' countries came from (recording location, channel, unknown): clips and share of each."""
    counts = sources.value_counts()
    return pd.DataFrame({"source": counts.index, "clips": counts.to_numpy(),
                         "share": (counts / max(len(sources), 1)).round(4).to_numpy()})


def paper_table3() -> pd.DataFrame:
    """The note's Table 3 as shipped: one row per continent, one column per edition."""
    return pd.read_csv(data_path("paper_table3_geography.csv"))


def beside_paper(geography: Geography, edition: str = "Kinetics-700-2020") -> pd.DataFrame:
    """Our continent shares next to the note's for ``edition``, with the difference in share."""
    paper = paper_table3()
    if edition not in paper.columns:
        raise ValueError(f"the note's Table 3 has no column {edition!r}; it has {list(paper.columns[1:])}")
    merged = geography.table.merge(
        paper[["continent", edition]].rename(columns={edition: "paper_share"}), on="continent", how="left"
    )
    return merged.assign(difference=merged["share"] - merged["paper_share"])
