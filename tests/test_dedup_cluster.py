"""Keep-rule order, drop reasons, reviewer overrides (keep / split) and their file format, contact sheets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kinetics_assets.dedup import (
    ClipItem,
    ClipMatch,
    decide,
    read_overrides,
    write_overrides_template,
)
from kinetics_assets.dedup.cluster import cluster_id, clusters
from kinetics_assets.dedup.fingerprint import content_box, fingerprint_frames
from kinetics_assets.dedup.review import write_cluster_sheets
from resources.sandbox.render import Scene, class_motion, encode_mp4


def _match(a: int, b: int, offset: float = 0.0, frames: int = 14, kind: str = "re-upload") -> ClipMatch:
    return ClipMatch(a, b, offset, frames, 2.0, False, kind)


def _keeper(items, matches, overrides=()) -> str:
    rows = decide(items, matches, overrides)
    return rows.loc[rows["keep"], "clip_id"].item()


def test_keep_rule_order_previous_edition_then_resolution_then_upload_then_id():
    base = [ClipItem("c", source_height=720, upload_date="20200101"),
            ClipItem("b", source_height=360, upload_date="20190101"),
            ClipItem("a", source_height=720, upload_date="20200101"),
            ClipItem("d", source_height=240, upload_date="20210101", is_previous_edition=True)]
    pairs = [_match(0, 1), _match(1, 2), _match(2, 3)]
    assert _keeper(base, pairs) == "d"                                  # previous edition wins
    assert _keeper(base[:3], pairs[:2]) == "a"                          # 720p beats 360p; tie on date -> id
    later = [ClipItem("a", source_height=720, upload_date="2021-05-01"), ClipItem("c", source_height=720,
                                                                                   upload_date="2020-01-01")]
    assert _keeper(later, [_match(0, 1)]) == "c"                        # same height: earlier upload
    unknown = [ClipItem("a", source_height=720), ClipItem("b", source_height=720, upload_date="20240101")]
    assert _keeper(unknown, [_match(0, 1)]) == "b"                      # unknown upload date sorts last


def test_dropped_clip_reason_names_keeper_kind_offset_and_frames():
    items = [ClipItem("keep_me", is_previous_edition=True), ClipItem("copy"), ClipItem("copy_of_copy")]
    # copy shows keep_me's frame t at t - 3.5 in copy: offset (a - b) = copy - keep_me = -3.5
    matches = [_match(1, 0, offset=-3.5, kind="compilation"), _match(2, 1, frames=9)]
    rows = decide(items, matches).set_index("clip_id")
    assert rows.loc["copy", "reason"] == ("duplicate of keep_me (compilation match at offset +3.5 s, "
                                          "14 matching frames)")
    assert rows.loc["copy_of_copy", "reason"].startswith("duplicate of keep_me via copy (re-upload match")
    assert rows["cluster_id"].nunique() == 1 and rows.loc["keep_me", "reason"] == ""
    assert rows.loc["copy", "cluster_id"] == cluster_id(["copy", "keep_me", "copy_of_copy"])


def test_clusters_are_transitive_and_singletons_left_out():
    items = [ClipItem(x) for x in "abcdef"]
    groups = clusters(items, [_match(0, 2), _match(2, 4), _match(1, 5)])
    assert groups == [[0, 2, 4], [1, 5]]


def test_overrides_keep_and_split_are_honoured(tmp_path: Path):
    items = [ClipItem("a", source_height=1080), ClipItem("b"), ClipItem("c"), ClipItem("d"), ClipItem("e")]
    matches = [_match(0, 1), _match(1, 2), _match(3, 4)]
    template = write_overrides_template(decide(items, matches), tmp_path / "overrides.csv")
    lines = template.read_text().splitlines()
    assert lines[0] == "cluster_id,decision,keep_id,members" and len(lines) == 3
    edited = [lines[0]]
    for line in lines[1:]:
        name, _, _keeper, members = line.split(",")
        edited.append(f"{name},keep,c,{members}" if "a" in members.split(";") else f"{name},split,,{members}")
    template.write_text("\n".join(edited) + "\n")
    overrides = read_overrides(template)
    rows = decide(items, matches, overrides).set_index("clip_id")
    assert rows.loc["c", "keep"] and not rows.loc["a", "keep"]          # reviewer's keeper beats resolution
    assert rows.loc["c", "reason"].startswith("kept by reviewer")
    assert "d" not in rows.index and "e" not in rows.index              # split: not duplicates any more
    # a new copy joining the reviewed cluster changes its id, the decision still holds
    grown = [*items, ClipItem("f", source_height=2160)]
    rows = decide(grown, [*matches, _match(2, 5)], overrides).set_index("clip_id")
    assert rows.loc["c", "keep"] and not rows.loc["f", "keep"]


@pytest.mark.parametrize(("row", "message"), [
    ("dup-x,maybe,,a;b", "decision 'maybe'"),
    ("dup-x,keep,,a;b", "needs a keep_id"),
    ("dup-x,keep,z,a;b", "'z' is not among"),
    ("dup-x,split,,a", "at least two members"),
])
def test_malformed_overrides_name_the_row(tmp_path: Path, row: str, message: str):
    path = tmp_path / "o.csv"
    path.write_text("cluster_id,decision,keep_id,members\n" + row + "\n")
    with pytest.raises(ValueError, match=rf"o\.csv:2 .*{message}"):
        read_overrides(path)


def test_duplicate_clip_ids_are_rejected():
    with pytest.raises(ValueError, match="'a' appears twice"):
        decide([ClipItem("a"), ClipItem("a")], [])


def test_letterbox_bars_are_stripped_and_flat_frames_dropped():
    rng = np.random.default_rng(0)
    picture = rng.integers(60, 200, size=(6, 60, 96)).astype(np.uint8)
    frames = np.zeros((6, 96, 96), np.uint8)
    frames[:, 18:78] = picture
    frames[0] = 0                                                         # a black frame
    assert content_box(frames) == (18, 78, 0, 96)
    fp = fingerprint_frames(np.arange(6) * 0.5, frames, 3.0)
    assert len(fp) == 5 and fp.times[0] == 0.5
    alone = fingerprint_frames(np.arange(5) * 0.5, np.ascontiguousarray(frames[1:, 18:78]), 2.5)
    assert (np.bitwise_count(fp.frame_hashes ^ alone.frame_hashes) <= 4).all()


def test_contact_sheet_written_per_cluster(tmp_path: Path):
    paths = {}
    for k, name in enumerate(["x", "y"]):
        scene = Scene(look_seed=k, width=64, height=48, fps=10, n_frames=20, motion=class_motion("dancing ballet"),
                      action_end=2.0)
        paths[name] = encode_mp4(scene, tmp_path / f"{name}.mp4")
    rows = decide([ClipItem("x"), ClipItem("y")], [_match(0, 1)])
    [sheet] = write_cluster_sheets(rows, paths, tmp_path / "sheets", columns=3)
    image = Image.open(sheet)
    assert sheet.name == f"{rows['cluster_id'][0]}.png" and image.size[1] >= 2 * 72
    assert np.asarray(image)[:, 360:].std() > 5                            # thumbnails, not a blank page
    assert not list((tmp_path / "sheets").glob(".*partial"))


def _static_clip(rng, base: int, fixed_masks: list[int], flips: int = 1):
    """A near-still clip: every frame is `base` with one of `fixed_masks` and a few random bits flipped."""
    import numpy as np

    from kinetics_assets.dedup.fingerprint import HASH_COLUMNS, Fingerprint

    hashes = []
    for k in range(20):
        noise = 0
        for bit in rng.choice(64, size=flips, replace=False):
            noise |= 1 << int(bit)
        hashes.append(base ^ fixed_masks[k % len(fixed_masks)] ^ noise)
    column = np.array(hashes, dtype=np.uint64)
    return Fingerprint(np.arange(20) * 0.5, np.repeat(column[:, None], len(HASH_COLUMNS), axis=1), 10.0)


def _mask(bits) -> int:
    return sum(1 << b for b in bits)


def test_near_still_clips_that_only_partly_resemble_each_other_are_not_duplicates():
    """Low-detail footage matches at every offset, so a partial resemblance must not pass the offset vote
    (a sandbox demo put a brushing-floor clip and a stacking-dice clip in one cluster that way)."""
    import numpy as np

    from kinetics_assets.dedup.match import match_fingerprints

    rng = np.random.default_rng(3)
    base = int(rng.integers(0, 2**63))
    still = _static_clip(rng, base, [0])
    resembling = _static_clip(rng, base, [_mask(range(7)), _mask(range(20, 44))])  # half the frames ~7 bits off
    # (every frame of `still` is close to half of `resembling`'s: the offset vote alone would say "duplicate")
    assert match_fingerprints(still, resembling) is None


def test_a_near_still_copy_whose_every_frame_matches_is_a_duplicate():
    import numpy as np

    from kinetics_assets.dedup.match import match_fingerprints

    rng = np.random.default_rng(4)
    base = int(rng.integers(0, 2**63))
    still = _static_clip(rng, base, [0])
    graded_copy = _static_clip(rng, base, [_mask(range(7))])  # a grade shifts ~7 bits of every frame
    match = match_fingerprints(still, graded_copy)
    assert match is not None and match.frames >= 16 and match.mean_distance > 6  # accepted for its full cover


def test_a_still_detailed_copy_ten_bits_off_matches_in_a_small_collection_not_among_100k_clips():
    """One still picture against another is one comparison: 10 bits is telling among 35 clips, but 100k clips
    hold ~5e9 pairs, among which unrelated pictures come that close by chance (fair-coin bits: ~1e-8 each)."""
    import dataclasses

    import numpy as np

    from kinetics_assets.dedup.match import MatchParams, chance_distance, match_fingerprints

    rng = np.random.default_rng(6)
    base = int(rng.integers(0, 2**63))
    still, copy = (dataclasses.replace(clip, detail=np.full(20, 10.0, np.float32))
                   for clip in (_static_clip(rng, base, [0], flips=0), _static_clip(rng, base, [_mask(range(10))],
                                                                                     flips=0)))
    assert match_fingerprints(still, copy, n_clips=35) is not None
    assert match_fingerprints(still, copy, n_clips=100_000) is None
    assert chance_distance(100_000, MatchParams()) == 4 and chance_distance(35, MatchParams()) == 12
