"""Table 3: the note's continents from upload countries (Mexico and Central America are Latin America)."""

import pandas as pd
import pytest

from kinetics_assets.release.geography import (
    NOTE_CONTINENTS,
    beside_paper,
    continent_of,
    continent_shares,
)


@pytest.mark.parametrize(
    ("country", "continent"),
    [
        ("MX", "Latin America"), ("PA", "Latin America"), ("CU", "Latin America"), ("PR", "Latin America"),
        ("BR", "Latin America"), ("SX", "Latin America"),
        ("US", "North America"), ("CA", "North America"), ("GL", "North America"), ("BM", "North America"),
        ("FR", "Europe"), ("VA", "Europe"), ("JP", "Asia"), ("NG", "Africa"), ("AU", "Oceania"),
        ("us", "North America"),
    ],
)
def test_continent_of_follows_the_note(country, continent):
    assert continent_of(country) == continent


def test_shares_over_located_clips_and_the_located_share():
    countries = pd.Series(["US", "US", "CA", "MX", "GT", "BR", "DE", "IN", None, "", float("nan"), "NZ"])
    geo = continent_shares(countries)
    assert (geo.clips, geo.located) == (12, 9)
    assert geo.located_share == pytest.approx(9 / 12)
    shares = dict(zip(geo.table["continent"], geo.table["share"]))
    assert list(shares) == list(NOTE_CONTINENTS)
    assert shares == pytest.approx(
        {"Africa": 0, "Asia": 1 / 9, "Europe": 1 / 9, "Latin America": 3 / 9, "North America": 3 / 9, "Oceania": 1 / 9}
    )
    assert geo.table["clips"].sum() == geo.located


def test_no_location_at_all_gives_zero_shares():
    geo = continent_shares(pd.Series([None, None]))
    assert geo.located == 0 and geo.located_share == 0 and (geo.table["share"] == 0).all()


def test_antarctica_appears_only_when_claimed():
    assert "Antarctica" not in set(continent_shares(pd.Series(["FR"])).table["continent"])
    assert continent_shares(pd.Series(["AQ", "FR"])).table.iloc[-1].to_dict() == {
        "continent": "Antarctica", "clips": 1, "share": 0.5
    }


@pytest.mark.parametrize("bad", ["USA", "U1", "ZZ"])
def test_unreadable_codes_are_named_with_their_clip(bad):
    with pytest.raises(ValueError, match=f"clip vid00000002: {bad!r}"):
        continent_shares(pd.Series(["US", "FR", bad], index=["vid00000000", "vid00000001", "vid00000002"]))


def test_beside_the_notes_table3():
    table = beside_paper(continent_shares(pd.Series(["US", "MX"])), "Kinetics-700-2020")
    row = table.set_index("continent").loc["North America"]
    assert row["paper_share"] == pytest.approx(0.566)
    assert row["difference"] == pytest.approx(0.5 - 0.566)
    with pytest.raises(ValueError, match="no column 'Kinetics-9000'"):
        beside_paper(continent_shares(pd.Series(["US"])), "Kinetics-9000")
