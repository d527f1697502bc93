"""Class partition keys: valid for Dagster and file paths, and mapping back to the exact class name."""

import re

import pytest

from kinetics_assets.editions.taxonomy import EDITIONS, load_classes
from kinetics_assets.partitions import CLASS_PARTITIONS, class_key, class_name

SAFE_KEY = re.compile(r"[A-Za-z0-9_%-]+")


def test_all_700_classes_round_trip_to_the_exact_name():
    names = load_classes("Kinetics-700-2020")
    assert len(names) == 700
    keys = [class_key(name) for name in names]
    assert [class_name(key) for key in keys] == list(names)
    assert len(set(keys)) == 700


def test_partitions_are_the_700_classes_in_published_order():
    keys = CLASS_PARTITIONS.get_partition_keys()
    assert len(keys) == 700
    assert class_name(keys[0]) == load_classes("Kinetics-700-2020")[0]


@pytest.mark.parametrize(
    "name, key",
    [
        ("passing American football (in game)", "passing_American_football_%28in_game%29"),
        ("massaging person's head", "massaging_person%27s_head"),
        ("tying knot (not on a tie)", "tying_knot_%28not_on_a_tie%29"),
    ],
)
def test_keys_are_readable_and_safe(name, key):
    assert class_key(name) == key
    assert SAFE_KEY.fullmatch(key)
    assert not set(key) & {"|", ",", "[", "]", "/", " ", "'", "."}


@pytest.mark.parametrize("name", ["a_b", "100% pure", "café au lait", "x/../y", "  two  spaces ", "a.b"])
def test_round_trip_holds_for_names_outside_the_taxonomy(name):
    key = class_key(name)
    assert SAFE_KEY.fullmatch(key)
    assert class_name(key) == name


def test_every_shipped_edition_round_trips():
    for edition in EDITIONS:
        for name in load_classes(edition):
            assert class_name(class_key(name)) == name


@pytest.mark.parametrize("bad", ["", "a b", "a%2", "a%zz", "../etc"])
def test_malformed_keys_are_refused(bad):
    with pytest.raises(ValueError):
        class_name(bad)
