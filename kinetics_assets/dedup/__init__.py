"""Near-duplicate detection for clips: fingerprint → candidate search → offset-voting match → clusters → review.

Typical use (what the clip_fingerprints / duplicate_clusters assets do)::

    fps = [fingerprint_video(path) for path in paths]          # or fingerprints_from_frame(parquet rows)
    matches = find_matches(fps)                                 # ClipMatch(a, b, ...) over positions in fps
    decisions = decide(items, matches, read_overrides(path))   # one row per clustered clip: keep / reason
"""

from __future__ import annotations

from collections.abc import Sequence

from kinetics_assets.dedup.cluster import ClipItem, Override, clip_items, clusters, decide
from kinetics_assets.dedup.fingerprint import Fingerprint, fingerprint_video
from kinetics_assets.dedup.match import (
    ClipMatch,
    MatchParams,
    confirm_pairs,
    match_fingerprints,
)
from kinetics_assets.dedup.review import (
    read_overrides,
    write_cluster_sheets,
    write_overrides_template,
)
from kinetics_assets.dedup.search import SearchParams, candidate_pairs
from kinetics_assets.dedup.table import FingerprintTable, fingerprint_table, fingerprints_from_frame


def find_matches(fingerprints: Sequence[Fingerprint], search: SearchParams = SearchParams(),
                 match: MatchParams = MatchParams()) -> list[ClipMatch]:
    """Confirmed matches among clips (positions in ``fingerprints``), never comparing all pairs."""
    return confirm_pairs(fingerprints, candidate_pairs(fingerprints, search), match)


__all__ = [
    "ClipItem", "ClipMatch", "Fingerprint", "FingerprintTable", "MatchParams", "Override", "SearchParams",
    "candidate_pairs", "clip_items", "clusters", "confirm_pairs", "decide", "find_matches", "fingerprint_table",
    "fingerprint_video", "fingerprints_from_frame", "match_fingerprints", "read_overrides", "write_cluster_sheets",
    "write_overrides_template",
]
